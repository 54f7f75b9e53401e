"""Writes for users and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, User
from apps.core import events

TOKEN_PREFIX = "lp_"  # noqa: S105 - a visible prefix, not a secret
MAX_TOKEN_DAYS = 3650


def token_digest(key: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def _audit(token: ApiToken, action: str, by: User | None, **detail) -> None:
    # No project: an owner sees it in the audit log of each project the user belongs to.
    events.record(
        events.Event(
            action,
            project=None,
            actor=by,
            audit=events.Audit(
                target=f"{token.user.username}'s token “{token.name}”",
                detail={"user_id": token.user_id, "prefix": token.prefix, **detail},
            ),
        )
    )


@transaction.atomic
def api_token_create(
    *, user: User, name: str, by: User | None, expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """Make a token; returns it with its key, which is not stored and cannot be shown again.

    `by` is the user themselves, or None for an operator at the console. With `expires_days`
    the token stops working that many days from now; without, it works until revoked."""
    expires_at = None
    if expires_days is not None:
        if (
            isinstance(expires_days, bool)
            or not isinstance(expires_days, int)
            or not 1 <= expires_days <= MAX_TOKEN_DAYS
        ):
            raise ValidationError(
                {
                    "expires_days": f"Give a whole number of days between 1 and {MAX_TOKEN_DAYS}, "
                    "or none for a token that works until revoked."
                }
            )
        expires_at = timezone.now() + timedelta(days=expires_days)
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip() or "API token",
        prefix=key[:10],
        digest=token_digest(key),
        expires_at=expires_at,
    )
    detail = {"via": "command"} if by is None else {}
    if expires_at is not None:
        detail["expires_at"] = expires_at.isoformat()
    _audit(token, "token.created", by, **detail)
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
