"""The audit log, reacting to the events the other apps record: an event with an audit entry
writes it."""

from __future__ import annotations

from apps.audit.services import audit_record
from apps.core.events import Event


def audit_entry(event: Event) -> None:
    """Written in the recording transaction, so an act that rolls back leaves no entry, and one
    that commits cannot lose its entry."""
    if event.audit is None:
        return
    audit_record(
        actor=event.actor,
        action=event.name,
        project=event.project,
        target=event.audit.target,
        detail=dict(event.audit.detail),
    )
