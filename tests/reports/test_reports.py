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
    assert (v2["flagged"], v2["confirmed"], v2["fixed"], v2["noise"]) == (7, 1, 2, {"train": 0.05})
    assert quality["cost_per_fixed_error"] == Decimal("0.40")  # 0.80 spent / 2 fixed
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
