"""People join by invitation: an owner invites an e-mail address, the link makes an account."""

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
    invite(team, email="someone@example.org", role="scientist")
    existing = UserFactory(username="sam")
    client.force_login(existing)
    response = client.post(link_from(sent_mail[0]))
    assert response.status_code == 302
    assert Membership.objects.get(project=team.project, user=existing).role == "scientist"


def test_member_accepting_again_is_told_and_nothing_changes(team, client, sent_mail):
    invite(team, email="someone@example.org", role="owner")
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
        ({"email": "owner1@example.com", "role": "viewer"}, "email", "already has an account"),
        ({"email": "not-an-address", "role": "viewer"}, "email", "not a valid e-mail address"),
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
