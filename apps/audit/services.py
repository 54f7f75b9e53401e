"""Writing the audit log."""

from __future__ import annotations

from apps.audit.models import AuditEvent


def audit_record(
    *, actor, action: str, project=None, target: str = "", detail: dict | None = None
) -> AuditEvent:
    """Record one act. Runs inside the caller's transaction, so an act that rolls back leaves
    no entry, and one that commits cannot lose its entry."""
    return AuditEvent.objects.create(
        project=project,
        project_name=getattr(project, "name", "") or "",
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=getattr(actor, "username", "") or "",
        action=action,
        target=str(target)[:300],
        detail=detail or {},
    )
