"""In Chromium: a scored dataset with a planted group from elsewhere; the health page shows the
outlier threshold the run chose and the signal that flagged the group."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from tests.datasets.conftest import import_into
from tests.e2e.test_projects_e2e import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def planted(tmp_path, *, n=240, group=16):
    """Four loose classes in 8-d, and a tight group of `group` samples away from all of them,
    each given one of the classes."""
    rng = np.random.default_rng(0)
    classes = ["cat", "dog", "bird", "fish"]
    lines = ["id,text,label," + ",".join(f"emb_{j}" for j in range(8))]
    source = rng.normal(size=8) * 2
    for i in range(n + group):
        if i < n:
            vector = np.eye(8)[i % 4] * 3 + rng.normal(scale=0.8, size=8)
            label = classes[i % 4]
        else:
            vector = source + rng.normal(scale=0.2, size=8)
            label = classes[int(rng.integers(0, 4))]
        lines.append(f"s{i},sample {i},{label}," + ",".join(f"{v:.4f}" for v in vector))
    path = tmp_path / "planted.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_health_page_shows_the_outlier_threshold_and_signals(page, team, tmp_path, screenshot):
    dataset = import_into(team, planted(tmp_path))
    call_command(
        "score", dataset=dataset.pk, inline=True, stdout=io.StringIO(), stderr=io.StringIO()
    )
    log_in(page, "owner1")
    page.goto(f"/datasets/{dataset.pk}/health/")
    card = page.locator("#outliers")
    expect(card).to_contain_text("samples flagged")
    expect(card).to_contain_text("Benjamini–Hochberg")
    expect(card).to_contain_text("in a group far from every class")
    card.scroll_into_view_if_needed()
    screenshot(page, "health-outliers")
    # The charts: a bar of the outlier strength opens the table on its samples.
    charts = page.locator("#distributions")
    charts.scroll_into_view_if_needed()
    screenshot(page, "health-charts")
    expect(page.locator("#dist-outlier_strength line.threshold")).to_have_count(1)
    page.locator("#dist-outlier_strength a").last.click()
    expect(page.locator(".chip").first).to_contain_text("outlier score >=")
    expect(page.locator("#sample-table tbody tr").first).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/datasets/{dataset.pk}/health/")
    page.locator("#distributions").scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "health-charts-390")
    assert not page.console_errors
