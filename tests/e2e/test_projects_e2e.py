"""In Chromium: log in, create a project, invite a member, who accepts and is given a role."""

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


def log_out(page) -> None:
    page.context.clear_cookies()  # the log-out button sits in a menu; the session is what counts


def test_owner_invites_a_member_who_accepts_and_gets_a_role(page, screenshot):
    UserFactory(username="olivia", email="olivia@example.com")
    UserFactory(username="rita", email="rita@example.com")

    log_in(page, "olivia")
    screenshot(page, "projects-empty")
    page.get_by_label("Name").fill("Traffic signs")
    page.get_by_label("Description").fill("Street sign classifier, v3 labels")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Traffic signs", level=1)).to_be_visible()
    expect(page.locator(".flash-success")).to_contain_text("You are its owner")

    # A bad address shows the error beside the form and invites nobody.
    page.get_by_label("E-mail").fill("rita@")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#invite .has-error .error")).to_contain_text("not a valid e-mail address")

    page.get_by_label("E-mail").fill("rita@example.com")
    page.locator("#invite select[name=invite-role]").select_option("reviewer")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#messages")).to_contain_text("Invitation sent to rita@example.com")
    expect(page.locator('#invitation-table tr[data-email="rita@example.com"]')).to_be_visible()
    expect(page.locator('#member-table tr[data-username="rita"]')).to_have_count(0)
    screenshot(page, "project-invited")
    log_out(page)

    # Rita finds the invitation on her projects page and accepts it.
    log_in(page, "rita")
    invitation = page.locator('#my-invitations li[data-project="traffic-signs"]')
    expect(invitation).to_contain_text("Reviewer")
    expect(invitation).to_contain_text("invited by olivia")
    screenshot(page, "projects-invitation")
    invitation.get_by_role("button", name="Accept").click()
    expect(page.get_by_role("heading", name="Traffic signs", level=1)).to_be_visible()
    expect(page.locator(".flash-success")).to_contain_text("Welcome to Traffic signs")
    log_out(page)

    log_in(page, "olivia")
    page.get_by_role("link", name="Traffic signs").click()
    row = page.locator('#member-table tr[data-username="rita"]')
    expect(row.locator("select")).to_have_value("reviewer")
    expect(page.locator("#invitation-table")).to_have_count(0)
    # Change her role in place (htmx posts on change) and see it stick after a reload.
    row.locator("select").select_option("scientist")
    expect(page.locator("#messages")).to_contain_text("rita is now Data scientist")
    page.reload()
    expect(page.locator('#member-table tr[data-username="rita"] select')).to_have_value("scientist")
    assert (
        Membership.objects.get(user__username="rita", project__slug="traffic-signs").role
        == "scientist"
    )

    screenshot(page, "project-members")
    assert page.console_errors == [], page.console_errors  # no CSP violations, no script errors


def test_member_sees_the_project_without_member_controls(page, screenshot):
    owner = UserFactory(username="olivia")
    viewer = UserFactory(username="victor")
    from apps.projects.services import member_add, project_create

    project = project_create(name="Bird calls", by=owner)
    member_add(project=project, user=viewer, role="viewer", by=owner)

    log_in(page, viewer.username)
    page.get_by_role("link", name="Bird calls").click()
    expect(page.locator('#member-table tr[data-username="olivia"]')).to_contain_text("Owner")
    expect(page.locator("#member-add")).to_have_count(0)
    screenshot(page, "project-as-viewer")
    assert page.console_errors == []
