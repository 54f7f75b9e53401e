"""The 403 and 404 pages keep the navigation and offer a way back; the project page links the
report only for a role that may read it."""

from __future__ import annotations

from html import unescape

import pytest

from apps.reports.models import ReportSharing

WAY_BACK = ('href="/projects/"', "data-back")
NAV = 'aria-label="Main"'


def test_a_viewer_without_shared_reports_gets_the_403_page(team, web_as):
    response = web_as(team.user("viewer")).get(f"/reports/projects/{team.project.slug}/")
    body = unescape(response.content.decode())
    assert response.status_code == 403
    assert "You don't have access to this page" in body
    assert NAV in body and all(part in body for part in WAY_BACK)


def test_a_mistyped_address_gets_the_404_page_with_the_navigation(team, web_as):
    response = web_as(team.user("viewer")).get("/projects/no-such-project/")
    body = unescape(response.content.decode())
    assert response.status_code == 404
    assert "This page doesn't exist or you can't see it" in body
    assert NAV in body and all(part in body for part in WAY_BACK)
    assert web_as(team.user("viewer")).get("/no/such/page/").status_code == 404


def test_the_404_page_for_someone_signed_out_shows_no_team_navigation(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404 and NAV not in response.content.decode()


@pytest.mark.parametrize(
    ("persona", "shared", "linked"),
    [
        ("owner", False, True),
        ("manager", False, True),
        ("viewer", False, False),
        ("viewer", True, True),
        ("scientist", True, False),
        ("reviewer", False, False),
    ],
)
def test_the_report_link_shows_only_for_who_may_open_it(persona, shared, linked, team, web_as):
    ReportSharing.objects.update_or_create(project=team.project, defaults={"viewers": shared})
    client = web_as(team.user(persona))
    body = client.get(f"/projects/{team.project.slug}/").content.decode()
    report = f"/reports/projects/{team.project.slug}/"
    assert (f'href="{report}"' in body) is linked
    assert client.get(report).status_code == (200 if linked else 403)
