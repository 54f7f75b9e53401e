"""Writes for users and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, User

TOKEN_PREFIX = "lp_"  # noqa: S105 - a visible prefix, not a secret


def token_digest(key: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def _audit(token: ApiToken, action: str, by: User | None, **detail) -> None:
    from apps.audit.services import audit_record

    # No project: an owner sees it in the audit log of each project the user belongs to.
    audit_record(
        actor=by,
        action=action,
        target=f"{token.user.username}'s token “{token.name}”",
        detail={"user_id": token.user_id, "prefix": token.prefix, **detail},
    )


@transaction.atomic
def api_token_create(*, user: User, name: str, by: User | None) -> tuple[ApiToken, str]:
    """Make a token; returns it with its key, which is not stored and cannot be shown again.

    `by` is the user themselves, or None for an operator at the console."""
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip() or "API token", prefix=key[:10], digest=token_digest(key)
    )
    _audit(token, "token.created", by, **({"via": "command"} if by is None else {}))
    return token, key


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by: User | None) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        _audit(token, "token.revoked", by)
    return token


def api_token_touch(*, token: ApiToken) -> None:
    """Record use, at most once a minute so that API calls don't each write a row."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
