"""Accepting a batch on evidence: the checked items' accuracy with its Wilson interval against the
project's acceptance level, an override with a reason below it (audited), what the acceptance will
change shown first, and the same rules in the API and on the page."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.datasets.models import Sample
from apps.projects.capabilities import Cap
from apps.quality.models import SampleScore
from apps.vendors import selectors, services
from apps.vendors.models import Batch, BatchItem, CostEntry
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected
from tests.vendors.conftest import make_batch
from workers.engine.labels import label_noise_estimate


def other_label(dataset, label):
    return next(x for x in dataset.labels if x != label)


def in_qa(world, team, vendor, *, gold_share=0.2, wrong_gold=0, qa_accept=0):
    """A batch in QA whose work items are all relabelled (to a class other than the current
    one), with `wrong_gold` gold items answered wrongly and `qa_accept` work items accepted."""
    dataset, _run, _rows = world
    batch = services.batch_send(
        batch=make_batch(world, team, vendor, gold_share=gold_share), by=team.user("manager")
    )
    items = list(batch.items.select_related("sample").order_by("position"))
    wrong = [i for i in items if i.is_gold][:wrong_gold]
    for item in items:
        if item.is_gold:
            label = other_label(dataset, item.gold_label) if item in wrong else item.gold_label
        else:
            label = other_label(dataset, item.sample.label)
        services.label_set(item=item, annotator=team.user("vendor"), label=label)
    services.batch_submit(batch=batch, by=team.user("vendor"))
    batch = services.qa_start(batch=batch, by=team.user("reviewer"))
    for item in [i for i in items if not i.is_gold][:qa_accept]:
        services.item_review(item=item, by=team.user("reviewer"), accept=True)
    return batch, items


def test_the_checked_items_give_an_accuracy_with_its_wilson_interval(world, team, vendor):
    batch, items = in_qa(world, team, vendor, wrong_gold=1, qa_accept=3)
    gold = sum(1 for i in items if i.is_gold)
    check = selectors.acceptance_check(batch)
    # Gold items by their known answer, the QA-accepted work items as right.
    right = [True] * (gold - 1) + [False] + [True] * 3
    estimate, low, high = label_noise_estimate(np.array(right))
    assert (check["checked"], check["right"], check["gold"], check["qa"]) == (
        gold + 3,
        gold + 2,
        gold,
        3,
    )
    assert check["estimate"] == pytest.approx(estimate)
    assert (check["low"], check["high"]) == (pytest.approx(low), pytest.approx(high))
    assert check["level"] == 0.8 and check["meets"] is (low >= 0.8)


def test_below_the_level_accepting_needs_a_reason_which_the_audit_log_keeps(world, team, vendor):
    batch, items = in_qa(world, team, vendor, wrong_gold=1)
    before = dict(Sample.objects.values_list("pk", "label"))
    assert not selectors.acceptance_check(batch)["meets"]
    for reason in ("", "   "):
        with pytest.raises(ValidationError) as refused:
            services.batch_accept(batch=batch, by=team.user("reviewer"), override_reason=reason)
        assert "override_reason" in refused.value.message_dict
        assert "below the acceptance level" in str(refused.value)
    # Refused means nothing changed: no labels, no costs, still in QA.
    assert dict(Sample.objects.values_list("pk", "label")) == before
    assert not CostEntry.objects.exists() and not AuditEvent.objects.exists()
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.IN_QA
    accepted = services.batch_accept(
        batch=batch, by=team.user("reviewer"), override_reason="Deadline; spot-checked by hand"
    )
    assert accepted.status == Batch.Status.ACCEPTED
    assert accepted.override_reason == "Deadline; spot-checked by hand"
    assert accepted.acceptance["meets"] is False and accepted.acceptance["checked"] > 0
    event = AuditEvent.objects.get(action="batch.accepted_by_override")
    assert event.actor == team.user("reviewer") and event.project == team.project
    assert event.detail["reason"] == "Deadline; spot-checked by hand"
    assert event.detail["batch_id"] == batch.pk and event.detail["level"] == 0.8


def test_with_nothing_checked_accepting_needs_the_override_too(world, team, vendor):
    batch, _items = in_qa(world, team, vendor, gold_share=0)
    services.acceptance_level_set(project=team.project, level=0.0, by=team.user("manager"))
    check = selectors.acceptance_check(batch)
    assert check["checked"] == 0 and check["estimate"] is None and not check["meets"]
    with pytest.raises(ValidationError, match="No gold item and no QA check"):
        services.batch_accept(batch=batch, by=team.user("reviewer"))
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.IN_QA


def test_enough_right_checks_accept_without_a_reason(world, team, vendor):
    batch, items = in_qa(world, team, vendor, qa_accept=100)
    services.acceptance_level_set(project=team.project, level=0.5, by=team.user("manager"))
    assert selectors.acceptance_check(batch)["meets"]
    accepted = services.batch_accept(batch=batch, by=team.user("reviewer"))
    assert accepted.status == Batch.Status.ACCEPTED and accepted.override_reason == ""
    assert not AuditEvent.objects.filter(action="batch.accepted_by_override").exists()


def test_the_acceptance_level_is_between_0_and_1(world, team, vendor):
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValidationError, match="level"):
            services.acceptance_level_set(project=team.project, level=bad, by=team.user("owner"))
    assert selectors.acceptance_level(team.project) == 0.8


def test_the_preview_lists_the_relabels_and_counts_the_doubtful_and_the_flagged(
    world, team, vendor
):
    dataset, run, _rows = world
    batch, items = in_qa(world, team, vendor, gold_share=0)
    work = [i for i in items if not i.is_gold]
    final = {i.sample_id: other_label(dataset, i.sample.label) for i in work}
    # The model agrees with the vendor on the first two, with the old label on the next two,
    # and with neither on the rest; every third sample is flagged.
    SampleScore.objects.filter(run=run).update(suggested_label=None, likely_mislabeled=False)
    for n, item in enumerate(work):
        previous, vendors = item.sample.label, final[item.sample_id]
        third = next(x for x in dataset.labels if x not in (previous, vendors))
        SampleScore.objects.filter(run=run, sample=item.sample_id).update(
            suggested_label=vendors if n < 2 else previous if n < 4 else third,
            likely_mislabeled=n % 3 == 0,
        )
    scored = set(SampleScore.objects.filter(run=run).values_list("sample_id", flat=True))
    preview = selectors.acceptance_preview(batch)
    assert preview["count"] == len(work)
    assert {(r["sample_id"], r["previous"], r["label"]) for r in preview["relabels"]} == {
        (i.sample_id, i.sample.label, final[i.sample_id]) for i in work
    }
    # Against both: only where the model had an opinion, and it was neither label.
    assert preview["against_both"] == sum(
        1 for n, i in enumerate(work) if n >= 4 and i.sample_id in scored
    )
    assert preview["flagged"] == sum(
        1 for n, i in enumerate(work) if n % 3 == 0 and i.sample_id in scored
    )
    assert preview["against_both"] > 0 and preview["flagged"] > 0


# --- API ------------------------------------------------------------------------------------------


def test_the_api_refuses_accepting_below_the_level_without_a_reason(world, team, vendor, api_as):
    batch, _items = in_qa(world, team, vendor, wrong_gold=1)
    client = api_as(team.user("reviewer"))
    shown = client.get(f"/api/batches/{batch.pk}/").json()["acceptance"]
    check = selectors.acceptance_check(batch)
    assert shown["estimate"] == pytest.approx(check["estimate"])
    assert (shown["low"], shown["high"]) == (
        pytest.approx(check["low"]),
        pytest.approx(check["high"]),
    )
    assert shown["level"] == 0.8 and shown["meets"] is False
    refused = client.post(f"/api/batches/{batch.pk}/action/", {"action": "accept"}, format="json")
    assert refused.status_code == 400 and "override_reason" in refused.json(), refused.content
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.IN_QA
    done = client.post(
        f"/api/batches/{batch.pk}/action/",
        {"action": "accept", "override_reason": "Known hard class"},
        format="json",
    )
    assert done.status_code == 200, done.content
    assert (
        done.json()["status"] == "accepted" and done.json()["override_reason"] == "Known hard class"
    )
    assert done.json()["acceptance"]["meets"] is False


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_acceptance_level_through_the_api_as_every_role(persona, world, team, api_as):
    url = f"/api/projects/{team.project.pk}/batch-acceptance/"
    client = api_as(team.user(persona))
    assert client.get(url).status_code == expected(persona, Cap.VIEW, 200)
    response = client.put(url, {"level": 0.95}, format="json")
    assert response.status_code == expected(persona, Cap.MANAGE_VENDORS, 200)
    if response.status_code == 200:
        assert response.json()["level"] == 0.95
        assert client.put(url, {"level": 2}, format="json").status_code == 400


# --- Pages ----------------------------------------------------------------------------------------


def test_the_batch_page_shows_the_evidence_and_the_changes_before_accepting(
    world, team, vendor, web_as
):
    batch, items = in_qa(world, team, vendor, wrong_gold=1)
    client = web_as(team.user("reviewer"))
    page = client.get(f"/vendors/batches/{batch.pk}/").content.decode()
    check = selectors.acceptance_check(batch)
    assert f"{round(check['low'] * 100)}–{round(check['high'] * 100)} %" in page
    assert "lower bound of the 95 % interval" in page and "acceptance level 80 %" in page
    work = [i for i in items if not i.is_gold]
    assert f"{len(work)} relabels" in page
    assert all(i.sample.external_id in page for i in work)
    assert 'name="override_reason"' in page
    form = re.search(r"<form[^>]*batch_action[^>]*|<form[^>]*/accept/[^>]*>", page)
    assert form and "hx-confirm" in form.group(0)
    refused = client.post(f"/vendors/batches/{batch.pk}/accept/", follow=True)
    assert "below the acceptance level" in refused.content.decode()
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.IN_QA
    client.post(f"/vendors/batches/{batch.pk}/accept/", {"override_reason": "Trusted vendor"})
    accepted = Batch.objects.get(pk=batch.pk)
    assert accepted.status == Batch.Status.ACCEPTED and accepted.override_reason == "Trusted vendor"
    page = client.get(f"/vendors/batches/{batch.pk}/").content.decode()
    assert "Accepted by override" in page and "Trusted vendor" in page
    assert not BatchItem.objects.filter(batch=batch).exclude(status="accepted").exists()


def test_sending_asks_for_confirmation_and_an_htmx_post_is_redirected(world, team, vendor, web_as):
    batch = make_batch(world, team, vendor)
    client = web_as(team.user("manager"))
    page = client.get(f"/vendors/batches/{batch.pk}/").content.decode()
    send = re.search(r"<form[^>]*/send/[^>]*>", page)
    assert send and "hx-confirm" in send.group(0) and "hx-post" in send.group(0)
    response = client.post(f"/vendors/batches/{batch.pk}/send/", HTTP_HX_REQUEST="true")
    assert (
        response.status_code == 200 and response["HX-Redirect"] == f"/vendors/batches/{batch.pk}/"
    )
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.SENT


def test_managers_set_the_acceptance_level_on_the_vendors_page(world, team, vendor, web_as):
    url = f"/vendors/projects/{team.project.slug}/"
    page = web_as(team.user("manager")).get(url).content.decode()
    assert 'name="level"' in page and "lower bound" in page
    web_as(team.user("manager")).post(url, {"action": "acceptance", "level": "0.9"})
    assert selectors.acceptance_level(team.project) == 0.9
    bad = web_as(team.user("manager")).post(
        url, {"action": "acceptance", "level": "lots"}, follow=True
    )
    assert "Acceptance level" in bad.content.decode()
    assert selectors.acceptance_level(team.project) == 0.9
    assert web_as(team.user("reviewer")).post(
        url, {"action": "acceptance", "level": "0.1"}
    ).status_code == expected("reviewer", Cap.MANAGE_VENDORS, 302)
    assert selectors.acceptance_level(team.project) == 0.9


def test_gold_items_not_labelled_yet_are_not_counted_as_wrong(world, team, vendor):
    """A batch just sent: its gold items have no answer yet, so nothing has been checked."""
    batch = services.batch_send(
        batch=make_batch(world, team, vendor, gold_share=0.2), by=team.user("manager")
    )
    check = selectors.acceptance_check(batch)
    assert (check["checked"], check["gold"], check["estimate"]) == (0, 0, None)
    assert "No gold item and no QA check" in check["why"]
    gold = batch.items.filter(gold_label__isnull=False).select_related("sample").first()
    services.label_set(item=gold, annotator=team.user("vendor"), label=gold.gold_label)
    check = selectors.acceptance_check(batch)
    assert (check["checked"], check["right"], check["gold"]) == (1, 1, 1)
