"""In Chromium: a mistyped address and a page the role may not use show Loupe's own pages, with
the navigation and a working way back; screenshots are kept."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_projects_e2e import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_404_and_403_pages_lead_back(page, team, screenshot):
    log_in(page, team.user("viewer").username)
    page.goto(f"/projects/{team.project.slug}/")
    expect(page.locator("h1")).to_have_text(team.project.name)
    expect(page.get_by_role("link", name="Report")).to_have_count(0)

    response = page.goto(f"/projects/{team.project.slug}/datsets/")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("This page doesn't exist or you can't see it")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    screenshot(page, "error-404")
    page.get_by_role("button", name="Go back").click()
    expect(page).to_have_url(f"{page.url.split('/projects/')[0]}/projects/{team.project.slug}/")

    response = page.goto(f"/reports/projects/{team.project.slug}/")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("You don't have access to this page")
    screenshot(page, "error-403")
    page.get_by_role("link", name="Go to your projects").click()
    expect(page.locator("h1")).to_have_text("Projects")
    # The only console errors are the two error statuses themselves.
    assert all("status of 40" in message for message in page.console_errors)
