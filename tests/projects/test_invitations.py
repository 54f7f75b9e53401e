"""People join by invitation: an owner invites an e-mail address; only that address's owner joins,
through the e-mailed link (making an account if they have none) or from their projects page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.projects.models import Invitation, Membership
from apps.projects.services import invitation_create
from tests.factories import PASSWORD, UserFactory


def invite(team, email="nina@example.org", role="reviewer"):
    invitation_create(
        project=team.project,
        email=email,
        role=role,
        by=team.user("owner"),
        site_url="http://testserver/",
    )


def link_from(mail) -> str:
    return re.search(r"http://testserver(/invitations/[^/\s]+/)", mail.body).group(1)


def test_invited_person_makes_an_account_and_joins_with_the_role(team, client, sent_mail):
    invite(team)
    assert sent_mail[0].to == ["nina@example.org"]
    assert "Cats and dogs" in sent_mail[0].subject and "Reviewer" in sent_mail[0].body
    link = link_from(sent_mail[0])
    assert "Join Cats and dogs" in client.get(link).content.decode()
    response = client.post(
        link,
        {
            "username": "nina",
            "password1": "a fine new secret 7",
            "password2": "a fine new secret 7",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/projects/cats-dogs/"
    nina = User.objects.get(username="nina")
    assert nina.email == "nina@example.org" and nina.password.startswith("argon2")
    assert Membership.objects.get(project=team.project, user=nina).role == "reviewer"
    assert client.get("/projects/cats-dogs/").status_code == 200  # logged in
    # The link works once.
    assert client.get(link).status_code == 404


def test_logged_in_user_accepts_as_themselves(team, client, sent_mail):
    existing = UserFactory(username="sam", email="Sam.Lee@Example.org")
    invite(team, email="sam.lee@example.ORG", role="scientist")  # the case of an address varies
    client.force_login(existing)
    response = client.post(link_from(sent_mail[0]))
    assert response.status_code == 302
    assert Membership.objects.get(project=team.project, user=existing).role == "scientist"


def test_another_account_holding_the_link_cannot_accept_it(team, client, api_as, sent_mail):
    invited = UserFactory(username="sam", email="sam@example.org")
    invite(team, email="sam@example.org", role="owner")
    invitation = Invitation.objects.get()
    link = link_from(sent_mail[0])
    thief = team.user("outsider")
    client.force_login(thief)
    unknown = client.get("/invitations/not-a-real-key/")
    for response in (client.get(link), client.post(link)):
        assert response.status_code == unknown.status_code == 404
    api = api_as(thief)
    assert api.post(f"/api/invitations/{invitation.pk}/accept/").status_code == 404
    assert api.post(f"/api/invitations/{invitation.pk}/decline/").status_code == 404
    assert invitation.pk not in {i["id"] for i in api.get("/api/invitations/").json()["results"]}
    assert not Membership.objects.filter(project=team.project, user=thief).exists()
    invitation.refresh_from_db()
    assert invitation.is_pending
    # The invited account still can.
    client.force_login(invited)
    assert client.post(link).status_code == 302
    assert Membership.objects.get(project=team.project, user=invited).role == "owner"


def test_member_accepting_again_is_told_and_nothing_changes(team, client, sent_mail):
    invite(team, email=team.user("viewer").email, role="owner")
    client.force_login(team.user("viewer"))
    response = client.post(link_from(sent_mail[0]))
    assert "already a member" in response.content.decode()
    assert (
        team.members["viewer"].__class__.objects.get(pk=team.members["viewer"].pk).role == "viewer"
    )


@pytest.mark.parametrize(
    "data,message",
    [
        (
            {
                "username": "reviewer1",
                "password1": "a fine new secret 7",
                "password2": "a fine new secret 7",
            },
            "is taken",
        ),
        (
            {
                "username": "nina",
                "password1": "a fine new secret 7",
                "password2": "different 7 secret",
            },
            "didn’t match",
        ),
        ({"username": "nina", "password1": "12345678", "password2": "12345678"}, "too common"),
        (
            {
                "username": "bad name!",
                "password1": "a fine new secret 7",
                "password2": "a fine new secret 7",
            },
            "valid username",
        ),
    ],
)
def test_bad_account_details_change_nothing(data, message, team, client, sent_mail):
    invite(team)
    users_before = User.objects.count()
    response = client.post(link_from(sent_mail[0]), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert User.objects.count() == users_before
    assert Invitation.objects.get().accepted_at is None


def test_expired_and_revoked_invitations_are_404(team, client, sent_mail):
    invite(team, email="a@example.org")
    invite(team, email="b@example.org")
    Invitation.objects.filter(email="a@example.org").update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    Invitation.objects.filter(email="b@example.org").update(revoked_at=timezone.now())
    for mail in sent_mail:
        link = link_from(mail)
        assert client.get(link).status_code == 404
        assert (
            client.post(
                link, {"username": "x", "password1": PASSWORD, "password2": PASSWORD}
            ).status_code
            == 404
        )
    assert client.get("/invitations/not-a-real-key/").status_code == 404


def test_a_new_invitation_replaces_the_pending_one(team, client, sent_mail):
    invite(team, role="viewer")
    invite(team, role="manager")
    assert client.get(link_from(sent_mail[0])).status_code == 404
    assert "Manager" in client.get(link_from(sent_mail[1])).content.decode()


@pytest.mark.parametrize(
    "payload,field,message",
    [
        ({"email": "not-an-address", "role": "viewer"}, "email", "not a valid e-mail address"),
        ({"email": "", "role": "viewer"}, "email", "not a valid e-mail address"),
        ({"email": "x@example.org", "role": "boss"}, "role", "Unknown role 'boss'"),
    ],
)
def test_bad_invitation_input_is_400(payload, field, message, team, api_as, sent_mail):
    response = api_as(team.user("owner")).post(
        f"/api/projects/{team.project.pk}/invitations/", payload, format="json"
    )
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert Invitation.objects.count() == 0 and sent_mail == []


def test_the_invitation_key_is_stored_hashed(team, sent_mail):
    invite(team)
    key = link_from(sent_mail[0]).split("/")[2]
    assert not Invitation.objects.filter(digest=key).exists()


def test_inviting_an_account_holder_or_an_unknown_address_answers_the_same(team, api_as, sent_mail):
    """An owner learns nothing about who has an account, and adds no one without consent."""
    existing = team.user("reviewer")
    api = api_as(team.user("outsider"))
    url = f"/api/projects/{team.other_project.pk}/invitations/"
    answers = []
    for email in (existing.email, "nobody-here@example.org"):
        response = api.post(url, {"email": email, "role": "owner"}, format="json")
        body = response.json()
        assert body.pop("email") == email
        for varying in ("id", "created_at", "expires_at"):
            assert body.pop(varying)
        answers.append((response.status_code, response.headers.get("Content-Type"), body))
    assert answers[0] == answers[1]
    assert answers[0][0] == 201
    assert [m.to for m in sent_mail] == [[existing.email], ["nobody-here@example.org"]]
    assert not Membership.objects.filter(project=team.other_project, user=existing).exists()


def test_the_invite_form_answers_the_same_for_an_account_holder_and_an_unknown_address(
    team, web_as, sent_mail
):
    client = web_as(team.user("outsider"))
    answers = []
    for email in (team.user("reviewer").email, "nobody-here@example.org"):
        response = client.post(
            "/projects/other-team/invitations/",
            {"invite-email": email, "invite-role": "viewer"},
            headers={"HX-Request": "true"},
        )
        flash = re.search(r'id="messages-oob".*?</div>', response.content.decode(), re.S).group(0)
        answers.append((response.status_code, re.sub(r"\S+@\S+?\.(org|com)", "EMAIL", flash)))
    assert answers[0] == answers[1] and answers[0][0] == 200
    assert "Invitation sent to EMAIL" in answers[0][1]
    assert Membership.objects.filter(project=team.other_project).count() == 1


def test_an_invited_account_holder_joins_only_on_accepting(team, web_as, api_as, sent_mail):
    invited = UserFactory(username="rita", email="rita@example.com")
    api_as(team.user("owner")).post(
        f"/api/projects/{team.project.pk}/invitations/",
        {"email": "RITA@example.com", "role": "scientist"},
        format="json",
    )
    assert not Membership.objects.filter(user=invited).exists()
    # Rita sees it on her projects page and in the API, with who invited her and the role.
    page = web_as(invited).get("/projects/").content.decode()
    assert "Cats and dogs" in page and "owner1" in page and "Data scientist" in page
    api = api_as(invited)
    mine = api.get("/api/invitations/").json()["results"]
    assert [(i["project"]["slug"], i["role"], i["invited_by"]) for i in mine] == [
        ("cats-dogs", "scientist", "owner1")
    ]
    assert api.get(f"/api/projects/{team.project.pk}/").status_code == 404  # not yet a member
    accepted = api.post(f"/api/invitations/{mine[0]['id']}/accept/")
    assert accepted.status_code == 201
    assert accepted.json()["slug"] == "cats-dogs" and accepted.json()["role"] == "scientist"
    assert Membership.objects.get(project=team.project, user=invited).role == "scientist"
    assert api.get("/api/invitations/").json()["results"] == []
    assert api.post(f"/api/invitations/{mine[0]['id']}/accept/").status_code == 404


def test_an_invited_account_holder_declines_from_the_projects_page(team, web_as, sent_mail):
    invited = UserFactory(username="rita", email="rita@example.com")
    invite(team, email="rita@example.com", role="viewer")
    invitation = Invitation.objects.get()
    client = web_as(invited)
    response = client.post(f"/invitations/{invitation.pk}/decline/")
    assert response.status_code == 302 and response["Location"] == "/projects/"
    invitation.refresh_from_db()
    assert invitation.declined_at is not None and not invitation.is_pending
    assert not Membership.objects.filter(user=invited).exists()
    assert "my-invitations" not in client.get("/projects/").content.decode()
    assert client.get(link_from(sent_mail[0])).status_code == 404
    # Declined invitations leave the owner's pending list.
    owner = web_as(team.user("owner")).get("/projects/cats-dogs/").content.decode()
    assert "rita@example.com" not in owner


def test_accepting_from_the_projects_page(team, web_as, sent_mail):
    invited = UserFactory(username="rita", email="rita@example.com")
    invite(team, email="rita@example.com", role="reviewer")
    invitation = Invitation.objects.get()
    response = web_as(invited).post(f"/invitations/{invitation.pk}/accept/")
    assert response.status_code == 302 and response["Location"] == "/projects/cats-dogs/"
    assert Membership.objects.get(project=team.project, user=invited).role == "reviewer"


def test_adding_a_member_by_username_is_gone(team, api_as, web_as):
    newcomer = UserFactory(username="newcomer")
    response = api_as(team.user("owner")).post(
        f"/api/projects/{team.project.pk}/members/",
        {"user": "newcomer", "role": "viewer"},
        format="json",
    )
    assert response.status_code == 405
    page = web_as(team.user("owner")).post(
        "/projects/cats-dogs/members/add/", {"user": "newcomer", "role": "viewer"}
    )
    assert page.status_code == 404
    assert not Membership.objects.filter(user=newcomer).exists()


def test_a_signed_in_stranger_cannot_take_an_invitation_to_an_address_without_account(
    team, client, sent_mail
):
    invite(team, email="nina@example.org", role="owner")
    link = link_from(sent_mail[0])
    client.force_login(team.user("outsider"))
    assert client.get(link).status_code == 404
    assert client.post(link).status_code == 404
    assert not Membership.objects.filter(project=team.project, user=team.user("outsider")).exists()
    assert Invitation.objects.get().is_pending


def test_the_api_schema_offers_invitations_not_adding_members(client, db):
    paths = client.get(
        "/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}
    ).json()["paths"]
    assert "post" not in paths["/api/projects/{id}/members/"]
    assert "post" in paths["/api/projects/{id}/invitations/"]
    assert {
        "/api/invitations/",
        "/api/invitations/{invitation_id}/accept/",
        "/api/invitations/{invitation_id}/decline/",
    } <= paths.keys()
