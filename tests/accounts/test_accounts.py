"""Log-in, rate limiting, password change and reset, hashing, tokens and security headers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, User
from apps.accounts.services import token_digest
from tests.factories import PASSWORD, UserFactory


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", email="alice@example.com")


def test_passwords_are_hashed_with_argon2(db):
    user = User.objects.create_user(username="bob", password="a long enough password 1")
    assert user.password.startswith("argon2")


def test_login_and_logout(alice, client):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/projects/"
    assert client.get("/projects/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/projects/").status_code == 302


def test_wrong_password_is_refused(alice, client):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_login_is_rate_limited(alice, client, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    # Locked: even the right password is refused now.
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert client.get("/projects/").status_code == 302


def test_there_is_no_sign_up(client, db):
    assert client.get("/accounts/signup/").status_code == 404
    assert client.get("/accounts/register/").status_code == 404


def test_password_change(alice, client):
    client.force_login(alice)
    response = client.post(
        "/accounts/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a brand new secret 42",
            "new_password2": "a brand new secret 42",
        },
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a brand new secret 42")


def test_password_reset_by_email(alice, client):
    response = client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.com"]
    link = re.search(
        r"http://testserver(/accounts/password/reset/\S+/)", mail.outbox[0].body
    ).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_url, {"new_password1": "reset via mail 9876", "new_password2": "reset via mail 9876"}
    )
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("reset via mail 9876")


def test_password_reset_for_unknown_address_sends_nothing(client, db):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert mail.outbox == []


def test_token_is_stored_hashed_and_works(alice, client):
    client.force_login(alice)
    response = client.post("/accounts/tokens/", {"name": "training script"})
    key = re.search(r'id="new-key">([^<]+)<', response.content.decode()).group(1)
    token = ApiToken.objects.get(user=alice)
    assert key not in (token.digest, token.prefix) and token.digest == token_digest(key)
    assert not ApiToken.objects.filter(digest=key).exists()
    api = client.__class__()
    assert (
        api.get("/api/me/", headers={"Authorization": f"Token {key}"}).json()["username"] == "alice"
    )
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_token_is_401(alice, client):
    client.force_login(alice)
    key = re.search(
        r'id="new-key">([^<]+)<', client.post("/accounts/tokens/", {"name": "ci"}).content.decode()
    ).group(1)
    token = ApiToken.objects.get(user=alice)
    response = client.post(f"/accounts/tokens/{token.pk}/revoke/", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "revoked" in response.content.decode()
    anonymous = client.__class__()
    response = anonymous.get("/api/projects/", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_tokens_through_the_api(alice, api_session_as):
    client = api_session_as(alice)
    created = client.post("/api/tokens/", {"name": "notebook"}, format="json")
    assert created.status_code == 201
    assert created.json()["expires_at"] is None
    key = created.json()["key"]
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert other.get("/api/me/").status_code == 200
    assert client.delete(f"/api/tokens/{created.json()['id']}/").status_code == 204
    assert other.get("/api/me/").status_code == 401
    assert client.post("/api/tokens/", {"name": ""}, format="json").json()["name"]


def test_a_token_cannot_mint_another_token(alice, api_as):
    client = api_as(alice)
    before = ApiToken.objects.count()
    response = client.post("/api/tokens/", {"name": "child"}, format="json")
    assert response.status_code == 403
    assert "signed-in session" in response.json()["detail"]
    assert ApiToken.objects.count() == before
    # Reading and revoking with a token still work.
    assert client.get("/api/tokens/").status_code == 200


def test_a_token_with_an_expiry_stops_working_when_it_expires(alice, api_session_as):
    created = api_session_as(alice).post(
        "/api/tokens/", {"name": "ci", "expires_days": 30}, format="json"
    )
    assert created.status_code == 201
    token = ApiToken.objects.get(pk=created.json()["id"])
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert created.json()["expires_at"] is not None
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {created.json()['key']}")
    assert other.get("/api/me/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = other.get("/api/me/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert "expired" in response.json()["detail"]


@pytest.mark.parametrize("days", [0, -3, 3651, "soon", 1.5])
def test_a_bad_expiry_is_400_naming_the_field(days, alice, api_session_as):
    response = api_session_as(alice).post(
        "/api/tokens/", {"name": "ci", "expires_days": days}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["expires_days"]
    assert ApiToken.objects.count() == 0


def test_the_token_page_sets_and_shows_an_expiry(alice, client):
    client.force_login(alice)
    bad = client.post("/accounts/tokens/", {"name": "ci", "expires_days": "0"})
    assert "greater than or equal to 1" in bad.content.decode() and ApiToken.objects.count() == 0
    response = client.post("/accounts/tokens/", {"name": "ci", "expires_days": "7"})
    token = ApiToken.objects.get(user=alice)
    assert token.expires_at.date() == (timezone.now() + timedelta(days=7)).date()
    html = response.content.decode()
    assert "Expires" in html and token.expires_at.strftime("%Y-%m-%d") in html
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(days=1))
    assert "expired" in client.get("/accounts/tokens/").content.decode()


def test_a_user_cannot_touch_another_users_token(alice, api_as):
    bob = UserFactory(username="bob")
    bob_client = api_as(bob)
    bob_token = ApiToken.objects.get(user=bob)
    alice_client = api_as(alice)
    assert alice_client.get(f"/api/tokens/{bob_token.pk}/").status_code == 404
    assert alice_client.delete(f"/api/tokens/{bob_token.pk}/").status_code == 404
    assert bob_client.get("/api/me/").status_code == 200


def test_inactive_users_token_is_refused(alice, api_as):
    client = api_as(alice)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert client.get("/api/me/").status_code == 401


def test_create_api_token_command_prints_the_key_last(alice, capsys):
    call_command("create_api_token", "alice")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert ApiToken.objects.get(user=alice).digest == token_digest(key)


def test_create_api_token_command_for_unknown_user_fails(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No active user named 'ghost'"):
        call_command("create_api_token", "ghost")
    assert ApiToken.objects.count() == 0


def test_create_api_token_command_sets_an_expiry(alice, capsys):
    call_command("create_api_token", "alice", "--expires-days", "3")
    token = ApiToken.objects.get(user=alice)
    assert token.expires_at.date() == (timezone.now() + timedelta(days=3)).date()
    assert "expires" in capsys.readouterr().err


def test_create_api_token_command_refuses_a_bad_expiry(alice):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="between 1 and 3650"):
        call_command("create_api_token", "alice", "--expires-days", "0")
    assert ApiToken.objects.count() == 0


def test_security_headers_and_csp_without_inline_scripts(client, db):
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    html = response.content.decode()
    # Every script is an external file; no inline code and no on* handlers.
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert not re.search(r"\son[a-z]+=", html)
