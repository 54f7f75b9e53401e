"""In Chromium at a phone's width (390 px): every main page fits the screen without scrolling
sideways; wide tables scroll in their own box, charts scale, and the embedding map stays inside
its card. Screenshots at 390 px and 1440 px are kept."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.datasets.models import Sample
from apps.review import services as review
from apps.vendors.models import Batch
from tests.e2e.test_map_e2e import scored_dataset
from tests.e2e.test_projects_e2e import log_in
from tests.monitoring.test_drift_classes import days, labelled_dataset

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}

# Columns and values the phone layout keeps: a sample's id, a session's and a batch's samples,
# the sample's metadata values.
SHOWN = {
    "samples": "#sample-table tbody td:nth-child(2) a",
    "sample": "#sample-metadata td",
    "session": "table th:text('Sample')",
    "batch": "table th:text('Sample')",
    "dataset": "table thead th:nth-child(2)",
}

# The elements whose right edge passes the viewport's, innermost first, with their width: what
# to look at when a page scrolls sideways.
OVERFLOWING = """() => {
    const limit = document.documentElement.clientWidth;
    const out = [];
    for (const el of document.querySelectorAll("body *")) {
        const box = el.getBoundingClientRect();
        if (box.right > limit + 0.5 && box.width > 0) {
            out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className && el.className.baseVal === undefined ? el.className : ""} ${Math.round(box.left)}-${Math.round(box.right)}`);
        }
    }
    return out.slice(-12);
}"""


def fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], (page.url, width, page.evaluate(OVERFLOWING))


def inside(inner: dict, outer: dict) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def test_the_main_pages_fit_a_phone(page, books, team, screenshot):
    dataset = books.datasets.get(name="q")
    samples = list(Sample.objects.filter(dataset=dataset).order_by("pk"))
    # A sample whose id, text and metadata have no place to break, and neighbours with long text.
    sample = samples[1]
    sample.external_id = "tickets/2025/11/07/eu-west-1/" + "0" * 24 + "1234"
    sample.text = "Refund please: https://shop.example.com/orders/" + "a1b2c3d4" * 12 + " twice"
    sample.metadata = {"source_url": "https://example.com/" + "path/" * 20, "n": 3}
    sample.save()
    for other in samples[2:]:
        other.text = "a rather long text that goes on and on about the order and the refund " * 2
        other.save()
    drift = labelled_dataset(team)
    by_day = days(team, drift)
    mapped, _ = scored_dataset(team)
    session = review.session_create(
        dataset=dataset, by=team.user("owner"), title="Birds or cats",
        query={"field": "label", "op": "=", "value": "cat"}, ordering="-mislabel_score",
        run=dataset.scoring_runs.order_by("version").first(),
        participants=[team.user("owner"), team.user("reviewer")],
    )  # fmt: skip
    batch = Batch.objects.get(title="C")
    pages = {
        "projects": "/projects/",
        "project": f"/projects/{books.slug}/",
        "dataset": f"/datasets/{dataset.pk}/",
        "samples": f"/datasets/{dataset.pk}/samples/",
        "sample": f"/datasets/{dataset.pk}/samples/{sample.pk}/",
        "health": f"/datasets/{mapped.pk}/health/",
        "map": f"/datasets/{mapped.pk}/map/",
        "drift": f"/datasets/{drift.pk}/drift/?window={by_day['2025-11-09'].pk}",
        "report": f"/reports/projects/{books.slug}/",
        "session": f"/review/sessions/{session.pk}/",
        "queue": f"/review/sessions/{session.pk}/queue/",
        "vendors": f"/vendors/projects/{books.slug}/",
        "batch": f"/vendors/batches/{batch.pk}/",
    }
    log_in(page, team.user("owner").username)
    page.set_viewport_size(PHONE)
    for name, url in pages.items():
        response = page.goto(url)
        assert response and response.ok, (url, response and response.status)
        page.wait_for_load_state("networkidle")
        fits(page)
        # The header's links are all on the screen.
        for link in page.locator(".topnav a").all():
            box = link.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], name
        if name in SHOWN:  # what a narrow screen must not drop
            expect(page.locator(SHOWN[name]).first).to_be_visible()
        screenshot(page, f"phone-{name}")

    # Charts scale to their card; the map's canvas stays inside its frame, on the screen.
    page.goto(pages["report"])
    card = page.locator("#spend").bounding_box()
    chart = page.locator("#spend svg.chart").bounding_box()
    assert card and chart and inside(chart, card)
    page.goto(pages["drift"])
    card = page.locator("#drift-chart").bounding_box()
    chart = page.locator("#drift-chart svg").first.bounding_box()
    assert card and chart and inside(chart, card)
    page.goto(pages["map"])
    expect(page.locator("#map-status")).to_have_text("424 samples")
    frame = page.locator("#map").bounding_box()
    canvas = page.locator("#map canvas").bounding_box()
    assert frame and canvas and inside(canvas, frame)
    assert frame["x"] >= 0 and frame["x"] + frame["width"] <= PHONE["width"]
    # Every point is drawn on the canvas: the tall, narrow map shows the whole width of the data.
    points = page.evaluate("""() => {
        const map = document.getElementById("map");
        return map.pointIds.map((_, i) => map.scatterplot.getScreenPosition(i));
    }""")
    assert len(points) == 424
    assert all(0 <= x <= canvas["width"] and 0 <= y <= canvas["height"] for x, y in points)

    # The pages changed for phones, as a desktop shows them.
    page.set_viewport_size(DESKTOP)
    for name in ("sample", "drift", "report", "map"):
        page.goto(pages[name])
        page.wait_for_load_state("networkidle")
        screenshot(page, f"desktop-{name}")
    assert page.console_errors == []


def test_the_vendors_work_page_fits_a_phone(page, books, team, screenshot):
    batch = Batch.objects.get(title="C")
    log_in(page, team.user("vendor").username)
    page.set_viewport_size(PHONE)
    response = page.goto(f"/vendors/work/{batch.pk}/")
    assert response and response.ok
    fits(page)
    screenshot(page, "phone-vendor-work")
    assert page.console_errors == []
