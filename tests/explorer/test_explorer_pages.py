"""The explorer's web pages as every role: the table (chips, bad queries, bulk actions, saved
views), the sample page (steps within the query, scores, neighbours) and the query language."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import pytest

from apps.datasets.models import LabelEvent, SampleTag
from apps.explorer.models import SavedView
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected


def table(dataset, **params) -> str:
    return f"/datasets/{dataset.pk}/samples/"


@pytest.mark.parametrize("persona", PERSONAS)
def test_pages_as_every_role(persona, world, team, web_as):
    dataset, _run, rows = world
    client = web_as(team.user(persona))
    q = json.dumps({"field": "split", "op": "=", "value": "test"})
    for path in (
        f"/datasets/{dataset.pk}/samples/",
        f"/datasets/{dataset.pk}/samples/?ordering=-mislabel_score&q={q}",
        f"/datasets/{dataset.pk}/samples/{rows[1]['id']}/?ordering=margin",
    ):
        assert client.get(path).status_code == expected(persona, Cap.VIEW, 200), path
    # The language's reference shows no project data: every signed-in user may read it.
    assert client.get("/datasets/query-language/").status_code == 200


BULK = [
    ({"action": "tag", "tag": "t", "all": "1"}, Cap.COMMENT),
    ({"action": "untag", "tag": "check", "all": "1"}, Cap.COMMENT),
    ({"action": "relabel", "label": "cat", "all": "1"}, Cap.CURATE),
    ({"action": "remove", "all": "1"}, Cap.CURATE),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("body,cap", BULK)
def test_bulk_actions_as_every_role(persona, body, cap, world, team, web_as):
    dataset, _run, _rows = world
    q = json.dumps({"field": "split", "op": "=", "value": "test"})
    response = web_as(team.user(persona)).post(
        f"/datasets/{dataset.pk}/samples/bulk/", {**body, "q": q}
    )
    assert response.status_code == expected(persona, cap, 302)


@pytest.mark.parametrize("persona", PERSONAS)
def test_saving_a_view_as_every_role(persona, world, team, web_as):
    dataset, _run, _rows = world
    response = web_as(team.user(persona)).post(
        f"/datasets/{dataset.pk}/views/", {"name": "mine", "q": "{}", "ordering": "-margin"}
    )
    assert response.status_code == expected(persona, Cap.COMMENT, 302)
    assert SavedView.objects.filter(name="mine").exists() == (response.status_code == 302)


def test_a_chip_is_added_as_a_condition_of_the_query(world, team, web_as):
    dataset, _run, rows = world
    client = web_as(team.user("viewer"))
    first = client.get(
        f"/datasets/{dataset.pk}/samples/",
        {"add_field": "margin", "add_op": "<", "add_value": "0.5", "ordering": "-margin"},
    )
    assert first.status_code == 302
    params = parse_qs(urlparse(first.url).query)
    assert json.loads(params["q"][0]) == {"field": "margin", "op": "<", "value": 0.5}
    assert params["ordering"] == ["-margin"]
    # The form carries the query so far as a hidden field, as the page's does.
    second = client.get(
        f"/datasets/{dataset.pk}/samples/",
        {"q": params["q"][0], "add_field": "label", "add_op": "in", "add_value": "cat, none"},
    )
    query = json.loads(parse_qs(urlparse(second.url).query)["q"][0])
    assert query == {
        "all": [
            {"field": "margin", "op": "<", "value": 0.5},
            {"field": "label", "op": "in", "value": ["cat", None]},
        ]
    }
    page = client.get(second.url).content.decode()
    assert page.count('class="chip"') == 2
    shown = {int(x) for x in re.findall(r'data-sample="(\d+)"', page)}
    want = {
        r["id"]
        for r in rows
        if r["label"] in ("cat", None)
        and r["score"]
        and r["score"]["margin"] is not None
        and r["score"]["margin"] < 0.5
    }
    assert shown == want


def test_a_bad_filter_or_query_is_shown_not_run(world, team, web_as):
    dataset, _run, _rows = world
    client = web_as(team.user("viewer"))
    response = client.get(
        f"/datasets/{dataset.pk}/samples/",
        {"add_field": "margin", "add_op": "<", "add_value": "low"},
        follow=True,
    )
    assert "That filter was not added" in response.content.decode()
    assert "is a number" in response.content.decode()
    bad = client.get(
        f"/datasets/{dataset.pk}/samples/",
        {"q": json.dumps({"field": "dataset__project__members__password", "op": "=", "value": 1})},
    )
    html = bad.content.decode()
    assert bad.status_code == 200 and "unknown field" in html and "data-sample=" not in html


def test_bulk_relabel_to_suggested_from_the_table(world, team, web_as):
    dataset, _run, rows = world
    client = web_as(team.user("scientist"))
    q = json.dumps({"field": "likely_mislabeled", "op": "=", "value": True})
    ticked = [
        r["id"]
        for r in rows
        if r["score"]
        and r["score"]["likely_mislabeled"]
        and r["score"]["suggested_label"] not in (None, r["label"])
    ][:3]
    response = client.post(
        f"/datasets/{dataset.pk}/samples/bulk/",
        {"action": "relabel", "label": "suggested", "q": q, "ids": ticked},
        follow=True,
    )
    assert "3 relabels added to the draft" in response.content.decode()
    draft = dict(
        LabelEvent.objects.filter(dataset=dataset, version=None).values_list("sample_id", "label")
    )
    assert draft == {r["id"]: r["score"]["suggested_label"] for r in rows if r["id"] in ticked}
    nothing = client.post(
        f"/datasets/{dataset.pk}/samples/bulk/", {"action": "tag", "tag": "x", "q": q}, follow=True
    )
    assert "Tick some samples first" in nothing.content.decode()
    assert not SampleTag.objects.filter(tag__name="x").exists()


def test_the_sample_page_steps_within_the_query_and_shows_why(world, team, web_as):
    dataset, run, rows = world
    client = web_as(team.user("viewer"))
    q = json.dumps({"field": "label", "op": "=", "value": "dog"})
    listed = client.get(f"/datasets/{dataset.pk}/samples/", {"q": q, "ordering": "-outlier_score"})
    order = [int(x) for x in re.findall(r'data-sample="(\d+)"', listed.content.decode())]
    assert len(order) >= 3
    page = client.get(
        f"/datasets/{dataset.pk}/samples/{order[1]}/", {"q": q, "ordering": "-outlier_score"}
    ).content.decode()
    assert f"/samples/{order[0]}/?" in re.search(r'<a[^>]+rel="prev"', page).group(0)
    assert f"/samples/{order[2]}/?" in re.search(r'<a[^>]+rel="next"', page).group(0)
    assert 'id="scores"' in page and "Outlier score" in page
    assert page.count('class="sim"') == 10  # ten nearest neighbours with their similarity


def test_similar_samples_are_listed_nearest_first_and_step_in_that_order(world, team, web_as):
    dataset, run, rows = world
    client = web_as(team.user("viewer"))
    anchor = rows[4]["id"]
    sample_page = client.get(f"/datasets/{dataset.pk}/samples/{anchor}/").content.decode()
    link = re.search(r'href="([^"]+)"[^>]*>[^<]*at least 0.9 similar', sample_page)
    assert link and "ordering=-similarity" in link.group(1)
    q = json.dumps({"similar_to": anchor, "min_similarity": 0.2})
    listed = client.get(f"/datasets/{dataset.pk}/samples/", {"q": q}).content.decode()
    assert 'aria-sort="descending" data-column="similarity"' in listed
    assert "Most similar first" in listed
    shown = [
        float(x) for x in re.findall(r'<td class="right num similarity">(-?[\d.]+)</td>', listed)
    ]
    order = [int(x) for x in re.findall(r'data-sample="(\d+)"', listed)]
    assert len(order) >= 3 and len(shown) == len(order) and shown == sorted(shown, reverse=True)
    page = client.get(f"/datasets/{dataset.pk}/samples/{order[1]}/", {"q": q}).content.decode()
    assert f"/samples/{order[0]}/?" in re.search(r'<a[^>]+rel="prev"', page).group(0)
    assert f"/samples/{order[2]}/?" in re.search(r'<a[^>]+rel="next"', page).group(0)
    # Removing the search chip goes back to the table's own order.
    chip = re.search(r'href="([^"]+)"[^>]*>[^<]*(?:×|Remove)', listed)
    assert chip and "similarity" not in chip.group(1)


def test_metadata_slices_link_to_their_values_and_bins(world, team, web_as):
    from apps.explorer.views.health import _slice_url

    dataset, run, rows = world
    client = web_as(team.user("viewer"))

    def listed(url: str) -> set[int]:
        return {
            int(x) for x in re.findall(r'data-sample="(\d+)"', client.get(url).content.decode())
        }

    def numeric(r) -> bool:
        n = r["metadata"].get("n")
        return isinstance(n, int | float) and not isinstance(n, bool)

    # The links sort by mislabel score: they list the samples the run scored.
    rows = [r for r in rows if r["score"] and r["score"]["mislabel_score"] is not None]

    assert listed(_slice_url(dataset, "src", "web")) == {
        r["id"] for r in rows if r["metadata"].get("src") == "web"
    }
    assert listed(_slice_url(dataset, "n", "[-1, 2)")) == {
        r["id"] for r in rows if numeric(r) and -1 <= r["metadata"]["n"] < 2
    }
    assert listed(_slice_url(dataset, "n", "[0, 3]", flagged=True)) == {
        r["id"]
        for r in rows
        if numeric(r)
        and 0 <= r["metadata"]["n"] <= 3
        and r["score"]
        and r["score"]["likely_mislabeled"]
    }
    assert _slice_url(dataset, "n", "(missing)") is None


def test_the_table_costs_the_same_queries_however_many_rows(world, team, web_as):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.explorer.views import table as views

    dataset, _run, _rows = world
    client = web_as(team.user("owner"))
    url = f"/datasets/{dataset.pk}/samples/?ordering=-margin"
    counts = []
    old = views.PAGE
    try:
        for size in (5, 40):
            views.PAGE = size
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            counts.append(len(queries))
    finally:
        views.PAGE = old
    assert counts[0] == counts[1] <= 18, counts  # the column menu's metadata keys; the drafts


def test_rows_with_a_pending_change_carry_a_draft_marker(world, team, web_as):
    from apps.datasets.services import sample_relabel, sample_remove

    dataset, _run, rows = world
    relabelled, removed = (dataset.samples.get(pk=rows[i]["id"]) for i in (1, 2))
    sample_relabel(sample=relabelled, label="bird", by=team.user("owner"))
    sample_remove(sample=removed, by=team.user("owner"), reason="blurry")
    page = web_as(team.user("viewer")).get(f"/datasets/{dataset.pk}/samples/").content.decode()
    marked = re.findall(
        r'data-sample="(\d+)"(?:(?!data-sample).)*?class="badge draft"[^>]*>([^<]+)<', page, re.S
    )
    assert {int(pk): text for pk, text in marked} == {
        relabelled.pk: "draft → bird",
        removed.pk: "draft: removal",
    }
