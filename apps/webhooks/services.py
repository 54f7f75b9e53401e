"""Webhooks: queueing signed deliveries of project events."""

from __future__ import annotations

EVENTS = (
    "scoring.finished",
    "drift.alert",
    "rule.fired",
    "session.closed",
    "batch.submitted",
    "version.committed",
)


def event_emit(*, project, event: str, payload: dict) -> int:
    """Queue a delivery of `event` to each active webhook of `project` subscribed to it; the
    deliveries are sent after the caller's transaction commits. Returns how many were queued."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    return 0  # filled in with the webhook models
