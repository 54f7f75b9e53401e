"""Undo of the sample table's last bulk action: tag, untag, relabel and remove in the draft put
back exactly as they were, once, and not after the draft was committed."""

from __future__ import annotations

import json

import pytest

from apps.datasets.models import LabelEvent, SampleTag, Tag
from apps.datasets.services import sample_relabel, version_commit
from apps.explorer import undo
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected

pytestmark = pytest.mark.django_db(transaction=True)

TEST_SPLIT = json.dumps({"field": "split", "op": "=", "value": "test"})


def tagged(tag: str) -> set[int]:
    return set(SampleTag.objects.filter(tag__name=tag).values_list("sample_id", flat=True))


def drafts(dataset) -> set[tuple]:
    return set(
        LabelEvent.objects.filter(dataset=dataset, version=None).values_list(
            "sample_id", "label", "removed", "reason"
        )
    )


def bulk(client, dataset, **body):
    return client.post(
        f"/datasets/{dataset.pk}/samples/bulk/", {"q": TEST_SPLIT, "all": "1", **body}, follow=True
    )


def undo_last(client, dataset):
    return client.post(f"/datasets/{dataset.pk}/samples/undo/", follow=True)


def test_tag_and_untag_are_undone_leaving_earlier_tags(world, team, web_as):
    dataset, _run, rows = world
    client = web_as(team.user("reviewer"))
    before = tagged("check")
    assert before
    page = bulk(client, dataset, action="tag", tag="check").content.decode()
    assert 'id="undo"' in page and "Last bulk action: Tagged" in page
    assert tagged("check") > before
    page = undo_last(client, dataset).content.decode()
    assert "Undone: Tagged" in page and 'id="undo"' not in page
    assert tagged("check") == before
    bulk(client, dataset, action="tag", tag=" brand new ")
    assert Tag.objects.filter(dataset=dataset, name="brand new").exists()
    undo_last(client, dataset)  # a tag the action made goes with it
    assert not Tag.objects.filter(dataset=dataset, name="brand new").exists()
    bulk(client, dataset, action="untag", tag="check")
    assert not tagged("check") & {r["id"] for r in rows if r["split"] == "test"}
    undo_last(client, dataset)
    assert tagged("check") == before
    again = undo_last(client, dataset).content.decode()  # one undo per action
    assert "no bulk action of this dataset to undo" in again and tagged("check") == before


@pytest.mark.parametrize("action", ["relabel", "remove"])
def test_draft_changes_are_undone_back_to_the_earlier_draft(action, world, team, web_as):
    dataset, _run, rows = world
    owner = team.user("owner")
    first = next(r for r in rows if r["split"] == "test" and r["label"] != "bird")
    sample_relabel(
        sample=dataset.samples.get(pk=first["id"]), label="bird", by=owner, reason="earlier"
    )
    earlier = drafts(dataset)
    client = web_as(team.user("scientist"))
    body = {"label": "cat"} if action == "relabel" else {"reason": "blurry"}
    bulk(client, dataset, action=action, **body)
    assert drafts(dataset) != earlier
    undo_last(client, dataset)
    assert drafts(dataset) == earlier


def test_no_undo_once_the_draft_is_committed(world, team, web_as):
    dataset, _run, _rows = world
    client = web_as(team.user("owner"))
    bulk(client, dataset, action="relabel", label="cat")
    made = drafts(dataset)
    version_commit(dataset=dataset, by=team.user("owner"), message="cats")
    page = undo_last(client, dataset).content.decode()
    assert "can no longer be undone" in page
    assert LabelEvent.objects.filter(dataset=dataset, version__isnull=False).count() >= len(made)


def test_a_selection_too_large_says_it_cannot_be_undone(world, team, web_as, monkeypatch):
    dataset, _run, _rows = world
    monkeypatch.setattr(undo, "UNDO_LIMIT", 2)
    page = bulk(web_as(team.user("reviewer")), dataset, action="tag", tag="big").content.decode()
    assert "More than 2 samples: this cannot be undone." in page and 'id="undo"' not in page


@pytest.mark.parametrize("persona", PERSONAS)
def test_undo_as_every_role(persona, world, team, web_as):
    dataset, _run, _rows = world
    answer = web_as(team.user(persona)).post(f"/datasets/{dataset.pk}/samples/undo/")
    assert answer.status_code == expected(persona, Cap.COMMENT, 302)
