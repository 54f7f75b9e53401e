"""The audit log's part of the account's tokens page: the recent history of the user's tokens."""

from __future__ import annotations

from apps.audit.selectors import audit_events_of_user
from apps.core.panels import panel_register


def token_history_context(request, context: dict) -> dict:
    return {"history": audit_events_of_user(request.user, limit=10)}


def register() -> None:
    panel_register(
        "tokens.history",
        template="audit/panels/token_history.html",
        context=token_history_context,
    )
