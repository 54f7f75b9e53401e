"""In Chromium: the drift page of a day whose class mix changed and of a day with a new kind of
data; screenshots are kept."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from playwright.sync_api import expect

from tests.e2e.test_projects_e2e import log_in
from tests.monitoring.test_drift_classes import days, labelled_dataset

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_drift_page_shows_the_class_signals(page, team, screenshot):
    dataset = labelled_dataset(team)
    by_day = days(team, dataset)
    log_in(page, team.user("scientist").username)
    page.goto(f"/datasets/{dataset.pk}/drift/?window={by_day['2025-11-08'].pk}")
    expect(page.locator("#label-shift-classes tbody tr")).to_have_count(2)
    expect(page.locator("#label-shift-classes")).to_contain_text("rising")
    expect(page.locator("#windows")).to_contain_text("label shift: class cat rose by")
    screenshot(page, "drift-label-shift")
    page.goto(f"/datasets/{dataset.pk}/drift/?window={by_day['2025-11-09'].pk}")
    expect(page.locator("#new-kind")).to_contain_text("belongs to no training class")
    link = page.locator("#new-kind a.btn").first  # the flagged ones; then the highest scores
    href = link.get_attribute("href") or ""
    assert "external_id" in unquote(href)  # the flagged samples, by id, in the sample table
    link.click()
    page.wait_for_url(f"**{href}")
    page.go_back()
    screenshot(page, "drift-new-kind")
    assert page.console_errors == []
