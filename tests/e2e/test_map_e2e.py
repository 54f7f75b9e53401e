"""In Chromium: the embedding map of a scored dataset, a lasso drawn with the mouse, and the
sample table it opens listing exactly the samples the lasso caught."""

from __future__ import annotations

import json
import math
import random
import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import expect

from apps.datasets.models import Dataset, Sample
from apps.quality.models import RunStatus, SampleScore, ScoringRun
from tests.e2e.test_projects_e2e import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LABELS = ["billing", "shipping", "refund", "account"]
TEXTS = {
    "billing": "I was charged twice for my order this month",
    "shipping": "Where is my parcel? The tracking has not moved",
    "refund": "Please send my money back for the broken kettle",
    "account": "I cannot log in after resetting my password",
}


def scored_dataset(team) -> tuple[Dataset, list[int]]:
    """Four classes in four blobs, and an island of 24 samples far from them (returned by id)."""
    rng = random.Random(3)
    dataset = Dataset.objects.create(project=team.project, name="support", labels=LABELS)
    run = ScoringRun.objects.create(dataset=dataset, version=1, status=RunStatus.DONE)
    centres = {"billing": (2, 2), "shipping": (8, 2), "refund": (2, 8), "account": (8, 8)}
    island = []
    for i in range(424):
        on_island = i >= 400
        label = rng.choice(LABELS) if on_island else LABELS[i % 4]
        cx, cy = (16, 14) if on_island else centres[label]
        spread = 0.5 if on_island else 1.3
        sample = Sample.objects.create(
            dataset=dataset,
            external_id=f"msg-{i:04d}",
            label=label,
            split="train" if i % 5 else "test",
            text=f"{TEXTS[label]} (#{i})",
        )
        # A few of the blobs' samples look like another class: the suggestion differs.
        suggested = rng.choice(LABELS) if rng.random() < 0.08 else label
        SampleScore.objects.create(
            run=run,
            sample=sample,
            x=cx + rng.gauss(0, spread),
            y=cy + rng.gauss(0, spread),
            suggested_label=suggested,
            likely_mislabeled=suggested != label,
            mislabel_score=round(rng.random() ** 2, 3),
            cluster=LABELS.index(label) if not on_island else 4,
        )
        if on_island:
            island.append(sample.pk)
    return dataset, island


def lasso_around(page, points: list[list[float]], margin: float = 28, least: float = 0) -> None:
    """Drag a closed loop around these canvas points (at least `least` pixels from their
    centre), with a pause between moves so that regl-scatterplot (which takes a lasso point at
    most every 10 ms) records each one."""
    box = page.locator("#map canvas").bounding_box()
    cx = sum(p[0] for p in points) / len(points)
    cy = sum(p[1] for p in points) / len(points)
    radius = max(least, max(math.hypot(p[0] - cx, p[1] - cy) for p in points) + margin)
    loop = [
        (box["x"] + cx + radius * math.cos(t), box["y"] + cy + radius * math.sin(t))
        for t in (2 * math.pi * k / 36 for k in range(37))
    ]
    page.mouse.move(*loop[0])
    page.mouse.down()
    for x, y in loop[1:]:
        page.mouse.move(x, y, steps=2)
        page.wait_for_timeout(15)
    page.mouse.up()


def test_lasso_on_the_map_opens_its_samples_in_the_table(team, page, screenshot):
    dataset, island = scored_dataset(team)
    log_in(page, team.user("scientist").username)
    page.goto(f"/datasets/{dataset.pk}/map/")
    expect(page.locator("#map-status")).to_have_text("424 samples")
    expect(page.locator("#map canvas")).to_be_visible()
    expect(page.locator("#map-legend li")).to_have_count(4)  # the four labels
    expect(page.locator("#map-legend")).to_contain_text("billing")

    # Where the island's points are on the canvas, as the scatterplot itself places them.
    positions = island_positions(page, island)
    assert len(positions) == len(island)

    # Hovering a point previews its sample, fetched from the API.
    box = page.locator("#map canvas").bounding_box()
    page.mouse.move(box["x"] + positions[0][0], box["y"] + positions[0][1])
    expect(page.locator("#map-tooltip")).to_be_visible()
    expect(page.locator("#map-tooltip")).to_contain_text("msg-04")
    expect(page.locator("#map-tooltip .tip-text")).not_to_have_text("Loading…")
    screenshot(page, "map-hover")

    page.get_by_role("button", name="Lasso").click()
    lasso_around(page, positions)

    expect(page.locator("#selection-count")).to_have_text(str(len(island)))
    selected = page.evaluate(
        """() => {
            const map = document.getElementById("map");
            return map.scatterplot.get("selectedPoints").map((i) => map.pointIds[i]);
        }"""
    )
    assert sorted(selected) == sorted(island)  # what the plot selected is what the page counts
    expect(page.locator("#selection-noun")).to_have_text("samples selected")
    expect(page.locator("#selection-labels li")).to_have_count(4)

    # Colour by a score: a continuous ramp in the legend; the selection stays.
    page.get_by_label("Colour by").select_option("mislabel_score")
    expect(page.locator("#map-legend .ramp-bar")).to_be_visible()
    expect(page.locator("#legend-title")).to_have_text("Mislabel score")
    screenshot(page, "map-score")
    assert page.evaluate(
        "document.getElementById('map').scatterplot.get('selectedPoints').length"
    ) == len(island)
    page.get_by_label("Colour by").select_option("label")
    expect(page.locator("#map-legend li")).to_have_count(4)
    screenshot(page, "map-lasso")

    page.get_by_role("link", name="Show in table").click()
    expect(page).to_have_url(re.compile(rf"/datasets/{dataset.pk}/samples/\?q=%7B%22within%22"))
    rows = page.locator("#sample-table tbody tr")
    expect(rows).to_have_count(len(island))
    listed = [int(v) for v in rows.evaluate_all("(trs) => trs.map((tr) => tr.dataset.sample)")]
    assert sorted(listed) == sorted(island)
    for sample_id in island[:3]:
        expect(page.locator(f'#sample-table a[href*="/samples/{sample_id}/"]')).to_have_count(1)
    screenshot(page, "map-lasso-table")
    assert page.console_errors == [], page.console_errors  # no CSP violations, no script errors


def island_positions(page, island: list[int]) -> list[list[float]]:
    return page.evaluate(
        """(ids) => {
            const map = document.getElementById("map");
            const wanted = new Set(ids);
            return map.pointIds.flatMap((id, i) => wanted.has(id) ? [map.scatterplot.getScreenPosition(i)] : []);
        }""",
        island,
    )


def test_a_large_map_draws_a_sample_and_the_table_gets_every_match(team, page, monkeypatch):
    """Above the limit (lowered to 100 here) the map draws a sample stratified by label; a lasso
    on it, within the page's query, still opens every matching sample in the table."""
    monkeypatch.setattr("apps.explorer.selectors.MAP_LIMIT", 100)
    dataset, island = scored_dataset(team)
    train = {"field": "split", "op": "=", "value": "train"}
    log_in(page, team.user("reviewer").username)
    page.goto(f"/datasets/{dataset.pk}/map/?q={quote(json.dumps(train))}")
    expect(page.locator("#map-status")).to_have_text(
        "Showing 100 of 339 samples, a sample stratified by label"
    )
    expect(page.locator(".map-query")).to_contain_text('"value":"train"')
    drawn = island_positions(page, island)
    assert 0 < len(drawn) < len(island)

    # Shift-drag lassos in the default pan mode; the island is far from the four blobs.
    page.keyboard.down("Shift")
    lasso_around(page, drawn, least=80)
    page.keyboard.up("Shift")
    expect(page.locator("#selection-count")).to_have_text(str(len(drawn)))
    link = page.get_by_role("link", name="Show in table")
    q = json.loads(parse_qs(urlsplit(link.get_attribute("href")).query)["q"][0])
    assert q["all"][0] == train and "within" in q["all"][1]

    link.click()
    rows = page.locator("#sample-table tbody tr")
    in_train = [pk for i, pk in enumerate(island) if (400 + i) % 5]
    expect(rows).to_have_count(len(in_train))
    listed = rows.evaluate_all("(trs) => trs.map((tr) => Number(tr.dataset.sample))")
    assert sorted(listed) == sorted(in_train)
    assert page.console_errors == [], page.console_errors


def test_map_of_an_unscored_dataset_says_so(team, page):
    dataset = Dataset.objects.create(project=team.project, name="fresh", labels=LABELS)
    log_in(page, team.user("viewer").username)
    page.goto(f"/datasets/{dataset.pk}/map/")
    expect(page.get_by_role("heading", name="Not scored yet")).to_be_visible()
    expect(page.locator("#map")).to_have_count(0)
    assert page.console_errors == []
