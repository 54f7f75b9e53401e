"""Every project endpoint and page, tried as every role and as an outsider, against the role table."""

from __future__ import annotations

import pytest

from apps.projects.capabilities import CAPABILITIES, Cap, Role, role_can
from apps.projects.models import Membership, Project
from tests.conftest import PERSONAS
from tests.factories import MembershipFactory, UserFactory

# The product's role table, written out by hand so that a change to the code's table is noticed.
PRODUCT_TABLE = {
    Cap.VIEW: {"owner", "manager", "scientist", "reviewer", "viewer"},
    Cap.MANAGE_MEMBERS: {"owner"},
    Cap.EDIT_DATA: {"owner", "manager", "scientist"},
    Cap.COMMENT: {"owner", "manager", "scientist", "reviewer"},
    Cap.CURATE: {"owner", "manager", "scientist"},
    Cap.ADJUDICATE: {"owner", "manager", "scientist"},
    Cap.MANAGE_VENDORS: {"owner", "manager"},
    Cap.QA: {"owner", "manager", "reviewer"},
    Cap.LABEL: {"vendor"},
    Cap.REPORTS: {"owner", "manager"},
    Cap.AUTOMATE: {"owner", "manager", "scientist"},
    Cap.INTEGRATIONS: {"owner", "manager"},
    Cap.AUDIT: {"owner"},
}


@pytest.mark.parametrize("cap", list(Cap))
def test_capability_table_matches_the_product_table(cap):
    assert {role.value for role in Role if cap in CAPABILITIES[role]} == PRODUCT_TABLE[cap]


def test_vendor_row_holds_only_labelling():
    assert CAPABILITIES[Role.VENDOR] == frozenset({Cap.LABEL})


def expected(persona: str, cap: Cap | None, ok: int) -> int:
    """What a persona must get: 404 when it may not see the thing, 403 when it may see but not act."""
    if persona == "outsider":
        return 404
    if cap is None or role_can(persona, cap):
        return ok
    return 403 if role_can(persona, Cap.VIEW) else 404


@pytest.fixture
def extra_member(team):
    return MembershipFactory(
        project=team.project, user=UserFactory(username="extra"), role=Role.VIEWER
    )


# --- REST API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_project_list_shows_only_own_projects(persona, team, api_as):
    response = api_as(team.user(persona)).get("/api/projects/")
    assert response.status_code == 200
    ids = {p["id"] for p in response.json()["results"]}
    assert (team.project.pk in ids) == (persona != "outsider")
    assert (team.other_project.pk in ids) == (persona == "outsider")
    for item in response.json()["results"]:
        assert {"id", "slug", "name", "role"} <= item.keys()


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_project_detail(persona, team, api_as):
    response = api_as(team.user(persona)).get(f"/api/projects/{team.project.pk}/")
    assert response.status_code == expected(persona, None, 200)
    if response.status_code == 200:
        assert response.json()["slug"] == "cats-dogs"
        assert response.json()["role"] == persona


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_project_update(persona, team, api_as):
    response = api_as(team.user(persona)).patch(
        f"/api/projects/{team.project.pk}/", {"description": "changed"}, format="json"
    )
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 200)
    team.project.refresh_from_db()
    assert (team.project.description == "changed") == (response.status_code == 200)


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_project_delete(persona, team, api_as):
    response = api_as(team.user(persona)).delete(f"/api/projects/{team.project.pk}/")
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 204)
    assert Project.objects.filter(pk=team.project.pk).exists() == (response.status_code != 204)


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_member_list(persona, team, api_as, django_assert_max_num_queries):
    client = api_as(team.user(persona))
    with django_assert_max_num_queries(6):
        response = client.get(f"/api/projects/{team.project.pk}/members/")
    assert response.status_code == expected(persona, Cap.VIEW, 200)
    if response.status_code == 200:
        assert {m["user"]["username"] for m in response.json()["results"]} == {
            f"{r}1" for r in Role.values
        }


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_member_add_is_not_offered(persona, team, api_as):
    UserFactory(username="newcomer")
    response = api_as(team.user(persona)).post(
        f"/api/projects/{team.project.pk}/members/",
        {"user": "newcomer", "role": "reviewer"},
        format="json",
    )
    assert response.status_code == 405  # the same to everyone: people join by invitation
    assert not Membership.objects.filter(user__username="newcomer").exists()


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_member_detail(persona, team, api_as, extra_member):
    response = api_as(team.user(persona)).get(
        f"/api/projects/{team.project.pk}/members/{extra_member.pk}/"
    )
    assert response.status_code == expected(persona, Cap.VIEW, 200)


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_member_change_role(persona, team, api_as, extra_member):
    response = api_as(team.user(persona)).patch(
        f"/api/projects/{team.project.pk}/members/{extra_member.pk}/",
        {"role": "scientist"},
        format="json",
    )
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 200)
    extra_member.refresh_from_db()
    assert (extra_member.role == "scientist") == (response.status_code == 200)


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_member_remove_other(persona, team, api_as, extra_member):
    response = api_as(team.user(persona)).delete(
        f"/api/projects/{team.project.pk}/members/{extra_member.pk}/"
    )
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 204)
    assert Membership.objects.filter(pk=extra_member.pk).exists() == (response.status_code != 204)


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_member_leave(persona, team, api_as):
    own = team.members.get(persona) or team.members["owner"]
    response = api_as(team.user(persona)).delete(
        f"/api/projects/{team.project.pk}/members/{own.pk}/"
    )
    if persona == "outsider":
        assert response.status_code == 404
    elif persona == "owner":
        assert response.status_code == 400  # the last owner cannot leave
        assert "last owner" in response.json()["member"][0]
    else:
        assert response.status_code == 204
    assert Membership.objects.filter(pk=own.pk).exists() == (response.status_code != 204)


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_me_and_tokens(persona, team, api_as):
    client = api_as(team.user(persona))
    assert client.get("/api/me/").json()["username"] == team.user(persona).username
    tokens = client.get("/api/tokens/").json()["results"]
    assert [t["name"] for t in tokens] == ["test"]
    assert "key" not in tokens[0] and "digest" not in tokens[0]


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/api/projects/"),
        ("post", "/api/projects/"),
        ("get", "/api/projects/{pk}/"),
        ("patch", "/api/projects/{pk}/"),
        ("delete", "/api/projects/{pk}/"),
        ("get", "/api/projects/{pk}/members/"),
        ("post", "/api/projects/{pk}/members/"),
        ("get", "/api/projects/{pk}/members/{member}/"),
        ("patch", "/api/projects/{pk}/members/{member}/"),
        ("delete", "/api/projects/{pk}/members/{member}/"),
        ("get", "/api/me/"),
        ("get", "/api/tokens/"),
        ("post", "/api/tokens/"),
    ],
)
@pytest.mark.parametrize("credentials", [None, "Token wrong-key", "Token ", "Bearer something"])
def test_api_without_a_valid_token_is_401(method, path, credentials, team, api_as):
    client = api_as(None)
    if credentials:
        client.credentials(HTTP_AUTHORIZATION=credentials)
    url = path.format(pk=team.project.pk, member=team.members["viewer"].pk)
    response = getattr(client, method)(url, {}, format="json")
    assert response.status_code == 401
    assert Project.objects.count() == 2 and Membership.objects.count() == 7


# --- Web pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_page_project_list(persona, team, web_as, django_assert_max_num_queries):
    client = web_as(team.user(persona))
    with django_assert_max_num_queries(6):
        response = client.get("/projects/")
    assert response.status_code == 200
    assert ("Cats and dogs" in response.content.decode()) == (persona != "outsider")


@pytest.mark.parametrize("persona", PERSONAS)
def test_page_project_detail(persona, team, web_as, django_assert_max_num_queries):
    client = web_as(team.user(persona))
    with django_assert_max_num_queries(8):
        response = client.get("/projects/cats-dogs/")
    assert response.status_code == expected(persona, None, 200)
    if response.status_code == 200:
        html = response.content.decode()
        # Vendors don't see the team; everyone else sees the members.
        assert ("reviewer1" in html) == (persona != "vendor")
        assert ('id="invite"' in html) == (persona == "owner")


@pytest.mark.parametrize("persona", PERSONAS)
def test_page_member_role(persona, team, web_as, extra_member):
    response = web_as(team.user(persona)).post(
        f"/projects/cats-dogs/members/{extra_member.pk}/role/",
        {"role": "manager"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 200)
    extra_member.refresh_from_db()
    assert (extra_member.role == "manager") == (response.status_code == 200)


@pytest.mark.parametrize("persona", PERSONAS)
def test_page_member_remove(persona, team, web_as, extra_member):
    response = web_as(team.user(persona)).post(
        f"/projects/cats-dogs/members/{extra_member.pk}/remove/", headers={"HX-Request": "true"}
    )
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 200)
    assert Membership.objects.filter(pk=extra_member.pk).exists() == (response.status_code != 200)


@pytest.mark.parametrize("persona", PERSONAS)
def test_page_project_delete(persona, team, web_as):
    response = web_as(team.user(persona)).post(
        "/projects/cats-dogs/delete/", {"confirm_slug": "cats-dogs"}
    )
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 302)
    assert Project.objects.filter(pk=team.project.pk).exists() == (response.status_code != 302)


@pytest.mark.parametrize("persona", PERSONAS)
def test_page_tokens(persona, team, web_as):
    assert web_as(team.user(persona)).get("/accounts/tokens/").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/projects/", "/projects/cats-dogs/", "/accounts/tokens/", "/accounts/password/change/"],
)
def test_pages_send_anonymous_visitors_to_login(path, team, client):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "path",
    [
        "/projects/cats-dogs/members/1/role/",
        "/projects/cats-dogs/members/1/remove/",
        "/projects/cats-dogs/delete/",
    ],
)
def test_anonymous_posts_change_nothing(path, team, client):
    response = client.post(path, {"user": "outsider", "role": "owner", "confirm_slug": "cats-dogs"})
    assert response.status_code == 302
    assert Membership.objects.filter(project=team.project).count() == 6


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_invitation_list(persona, team, api_as):
    response = api_as(team.user(persona)).get(f"/api/projects/{team.project.pk}/invitations/")
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 200)


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_invitation_create(persona, team, api_as, sent_mail):
    response = api_as(team.user(persona)).post(
        f"/api/projects/{team.project.pk}/invitations/",
        {"email": "new@example.org", "role": "reviewer"},
        format="json",
    )
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 201)
    assert len(sent_mail) == (1 if response.status_code == 201 else 0)


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_invitation_revoke(persona, team, api_as):
    from apps.projects.services import invitation_create

    invitation = invitation_create(
        project=team.project,
        email="new@example.org",
        role="viewer",
        by=team.user("owner"),
        site_url="http://x/",
    )
    response = api_as(team.user(persona)).delete(
        f"/api/projects/{team.project.pk}/invitations/{invitation.pk}/"
    )
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 204)
    invitation.refresh_from_db()
    assert (invitation.revoked_at is not None) == (response.status_code == 204)


@pytest.mark.parametrize("persona", PERSONAS)
def test_page_invitation_create_and_revoke(persona, team, web_as, sent_mail):
    client = web_as(team.user(persona))
    response = client.post(
        "/projects/cats-dogs/invitations/",
        {"invite-email": "new@example.org", "invite-role": "viewer"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == expected(persona, Cap.MANAGE_MEMBERS, 200)
    from apps.projects.models import Invitation

    invitation = Invitation.objects.filter(project=team.project).first()
    assert (invitation is not None) == (response.status_code == 200)
    if invitation is None:
        return
    revoke = client.post(
        f"/projects/cats-dogs/invitations/{invitation.pk}/revoke/", headers={"HX-Request": "true"}
    )
    assert revoke.status_code == 200
