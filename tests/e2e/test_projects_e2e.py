"""In Chromium: log in, create a project, add a member with a role, see the member listed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.projects.models import Membership
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(page.context._impl_obj._options.get("baseURL", "") + "/projects/")


def test_owner_creates_a_project_and_adds_a_member(page, screenshot):
    UserFactory(username="olivia", email="olivia@example.com")
    UserFactory(username="rita", email="rita@example.com")

    log_in(page, "olivia")
    screenshot(page, "projects-empty")
    page.get_by_label("Name").fill("Traffic signs")
    page.get_by_label("Description").fill("Street sign classifier, v3 labels")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Traffic signs", level=1)).to_be_visible()
    expect(page.locator(".flash-success")).to_contain_text("You are its owner")

    page.get_by_label("Username or e-mail").fill("rita@example.com")
    page.locator("#member-add select[name=role]").select_option("reviewer")
    page.get_by_role("button", name="Add member").click()
    row = page.locator('#member-table tr[data-username="rita"]')
    expect(row).to_be_visible()
    expect(row.locator("select")).to_have_value("reviewer")
    expect(page.locator("#messages")).to_contain_text("rita added as Reviewer")

    # Change her role in place (htmx posts on change) and see it stick after a reload. The row
    # was just swapped in: wait until htmx has settled it, or its select has no handler yet.
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )
    row.locator("select").select_option("scientist")
    expect(page.locator("#messages")).to_contain_text("rita is now Data scientist")
    page.reload()
    expect(page.locator('#member-table tr[data-username="rita"] select')).to_have_value("scientist")
    assert (
        Membership.objects.get(user__username="rita", project__slug="traffic-signs").role
        == "scientist"
    )

    # A bad username shows the error beside the form and adds nobody.
    page.get_by_label("Username or e-mail").fill("ghost")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#member-add .has-error .error")).to_contain_text(
        "No user with the username 'ghost'"
    )
    assert Membership.objects.filter(project__slug="traffic-signs").count() == 2

    screenshot(page, "project-members")
    assert page.console_errors == [], page.console_errors  # no CSP violations, no script errors


def test_member_sees_the_project_without_member_controls(page, screenshot):
    owner = UserFactory(username="olivia")
    viewer = UserFactory(username="victor")
    from apps.projects.services import member_add, project_create

    project = project_create(name="Bird calls", by=owner)
    member_add(project=project, user="victor", role="viewer", by=owner)

    log_in(page, viewer.username)
    page.get_by_role("link", name="Bird calls").click()
    expect(page.locator('#member-table tr[data-username="olivia"]')).to_contain_text("Owner")
    expect(page.locator("#member-add")).to_have_count(0)
    screenshot(page, "project-as-viewer")
    assert page.console_errors == []
