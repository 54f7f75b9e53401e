"""The reports against a fixture whose answers are computed by hand: spend, gold accuracy,
turnaround percentiles, rework rate, fixed errors and their cost, and model lift."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.projects.capabilities import Cap
from apps.reports.models import ReportSharing
from apps.reports.selectors import Period, percentile, report
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected


def accept_anyway(batch, by):
    """Accept a batch whatever its checked accuracy: these tests are about what it changed."""
    from apps.vendors import services

    return services.batch_accept(batch=batch, by=by, override_reason="checked elsewhere")


def test_spend_by_vendor_and_month_and_what_is_committed(books):
    money = report(books, Period())["spend"]
    assert [
        (r["vendor__name"], r["month"], r["amount"], r["items"]) for r in money["by_month"]
    ] == [
        ("Acme", dt.date(2026, 10, 1), Decimal("0.5000"), 5),
        ("Acme", dt.date(2026, 11, 1), Decimal("0.3000"), 3),
    ]
    assert money["total"] == Decimal("0.80") and money["accepted_items"] == 8
    assert money["cost_per_accepted_item"] == Decimal("0.10")
    assert money["labels"] == 8
    assert money["committed"] == Decimal("1.00")  # 5 items x 2 labels x 0.10
    november = report(books, Period(start=dt.date(2026, 11, 1)))["spend"]
    assert november["total"] == Decimal("0.30")


def test_scorecard_accuracy_turnaround_rework(books):
    card = report(books, Period())["scorecards"][0]
    assert card["gold_right"] == 2 and card["gold_total"] == 3
    assert card["gold_accuracy"] == pytest.approx(2 / 3)
    assert card["turnaround_median"] == pytest.approx(3.0)  # of 2 and 4 days
    assert card["turnaround_p90"] == pytest.approx(3.8)  # 2 + 0.9 x (4 - 2)
    assert card["rework_rate"] == pytest.approx(0.5)  # A was returned, B was not
    # The adjudicator relabelled sample 0 to dog; the vendor said dog there: agreement 1 of 1.
    assert card["agreement"] == 1.0 and card["compared"] == 1
    assert [t["accuracy"] for t in card["trend"]] == [pytest.approx(0.5), pytest.approx(1.0)]


def test_quality_over_time_and_model_lift(books):
    everything = report(books, Period())
    quality = everything["quality"][0]
    v2 = next(v for v in quality["versions"] if v["version"] == 2)
    # Of the 2 vendor changes only sample 0's is fixed: a review decision agrees with it.
    assert (v2["flagged"], v2["confirmed"], v2["fixed"], v2["noise"]) == (7, 1, 1, {"train": 0.05})
    assert quality["cost_per_fixed_error"] == Decimal("0.80")  # 0.80 spent / 1 fixed
    lift = everything["lift"][0]
    assert [(p["value"], p["spent"]) for p in lift["points"]] == [
        (0.80, Decimal(0)),
        (0.84, Decimal("0.80")),
    ]
    assert lift["gain_per_1000"] == pytest.approx(50.0)  # 0.04 / 0.80 x 1,000


def test_percentile_interpolates_like_numpy():
    assert percentile([1, 2, 3, 4], 90) == pytest.approx(3.7)
    assert percentile([5], 50) == 5 and percentile([], 50) is None


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("shared", [False, True])
def test_who_sees_the_reports(persona, shared, books, team, web_as):
    ReportSharing.objects.update_or_create(project=books, defaults={"viewers": shared})
    response = web_as(team.user(persona)).get(f"/reports/projects/{books.slug}/")
    if persona == "viewer" and shared:
        assert response.status_code == 200
    else:
        assert response.status_code == expected(persona, Cap.REPORTS, 200)


def test_every_table_exports_as_csv(books, team, web_as):
    client = web_as(team.user("manager"))
    for table in ("spend", "commitments", "scorecards", "quality", "lift"):
        response = client.get(f"/reports/projects/{books.slug}/?csv={table}")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv"), (
            table
        )
    body = client.get(f"/reports/projects/{books.slug}/?csv=spend").content.decode()
    assert "Acme,2026-10,0.5000,5" in body.replace("\r", "")


def test_csv_cells_of_names_cannot_run_as_formulas(books, team, web_as):
    from apps.vendors.models import Vendor

    Vendor.objects.filter(name="Acme").update(name="=HYPERLINK(1)")
    body = web_as(team.user("manager")).get(f"/reports/projects/{books.slug}/?csv=spend")
    assert "'=HYPERLINK(1),2026-10,0.5000,5" in body.content.decode().replace("\r", "")
    assert timezone.now()


def test_a_fixed_error_is_a_confirmed_change_or_a_corrected_flagged_sample(world, team):
    """A batch relabels two flagged and two unflagged samples; a review decision confirms one of
    the unflagged, a keep decision contradicts the other; a session's decision relabels a fifth.
    Fixed: the two flagged, the confirmed one, and the session's; not the other vendor change."""
    from apps.datasets.models import DatasetVersion, Sample
    from apps.quality.models import SampleScore
    from apps.review import services as review_services
    from apps.vendors import services as vendor_services

    dataset, run, _rows = world
    DatasetVersion.objects.create(dataset=dataset, number=1, message="import")  # what run scored
    scored = list(
        Sample.objects.filter(dataset=dataset, label__isnull=False, scores__run=run).order_by("pk")
    )
    flagged, unflagged, other = scored[:2], scored[2:4], scored[4]
    SampleScore.objects.filter(run=run).update(likely_mislabeled=False)
    SampleScore.objects.filter(run=run, sample__in=flagged).update(likely_mislabeled=True)
    new = {s.pk: next(x for x in dataset.labels if x != s.label) for s in scored[:5]}
    vendor = vendor_services.vendor_create(project=team.project, name="Acme")
    vendor_services.vendor_member_add(vendor=vendor, project=team.project, user=team.user("vendor"))
    batch = vendor_services.batch_create(
        dataset=dataset, vendor=vendor, by=team.user("manager"), title="Four",
        samples=flagged + unflagged, run=run,
    )  # fmt: skip
    batch = vendor_services.batch_send(batch=batch, by=team.user("manager"))
    for item in batch.items.all():
        vendor_services.label_set(
            item=item, annotator=team.user("vendor"), label=new[item.sample_id]
        )
    vendor_services.batch_submit(batch=batch, by=team.user("vendor"))
    vendor_services.qa_start(batch=batch, by=team.user("reviewer"))
    batch = accept_anyway(batch, team.user("reviewer"))
    confirmed, contradicted = unflagged
    review_services.decision_adjudicate(
        dataset=dataset, sample=confirmed, by=team.user("owner"), outcome="relabel",
        label=new[confirmed.pk], reason="the vendor is right",
    )  # fmt: skip
    review_services.decision_adjudicate(
        dataset=dataset, sample=contradicted, by=team.user("owner"), outcome="keep",
        reason="it was right before",
    )  # fmt: skip
    session = review_services.session_create(
        dataset=dataset, by=team.user("owner"), title="One more", samples=[other],
        participants=[team.user("reviewer")],
    )  # fmt: skip
    session = review_services.session_close(session=session, by=team.user("owner"))
    review_services.decision_adjudicate(
        dataset=dataset, sample=other, by=team.user("owner"), outcome="relabel",
        label=new[other.pk], reason="clearly", session=session,
    )  # fmt: skip
    review_services.decisions_apply(session=session, by=team.user("owner"))
    quality = report(team.project, Period())["quality"][0]
    fixed = {v["version"]: v["fixed"] for v in quality["versions"]}
    assert fixed == {1: 0, batch.version: 3, batch.version + 1: 1}
    assert quality["fixed"] == 4


def test_the_report_says_what_a_fixed_error_is(books, team, web_as):
    page = web_as(team.user("manager")).get(f"/reports/projects/{books.slug}/").content.decode()
    assert "A fixed error is a label change that a review decision confirmed" in page
