"""In Chromium: the report page with its charts, as a manager; a screenshot is kept."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_projects_e2e import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_report_renders_its_charts(page, books, team, screenshot):
    log_in(page, team.user("manager").username)
    page.goto(f"/reports/projects/{books.slug}/")
    expect(page.locator("h1")).to_have_text("What the labelling spend bought")
    expect(page.locator("#spend svg.chart rect.bar")).to_have_count(2)
    expect(page.locator("#lift svg.chart circle.dot")).to_have_count(2)
    expect(page.locator("#scorecards")).to_contain_text("67%")
    box = page.locator("#spend svg.chart").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 80
    screenshot(page, "report")
    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    assert page.console_errors == []
