"""Writing reports' settings: whether viewers may see the project's report."""

from __future__ import annotations

from django.db import transaction

from apps.core import events
from apps.projects.models import Project
from apps.reports.models import ReportSharing


@transaction.atomic
def report_sharing_set(*, project: Project, viewers: bool, by) -> ReportSharing:
    """Share the report with the project's viewers, or stop; only a change is audited."""
    sharing, _created = ReportSharing.objects.select_for_update().get_or_create(project=project)
    if sharing.viewers != viewers:
        sharing.viewers = viewers
        sharing.save(update_fields=["viewers"])
        events.record(
            events.Event(
                "report.sharing_changed",
                project=project,
                actor=by,
                audit=events.Audit(target="reports", detail={"viewers": viewers}),
            )
        )
    return sharing
