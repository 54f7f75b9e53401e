"""The audit log as CSV, streamed; the download is itself an audit event (audit.exported)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import ngettext

from apps.audit.actions import summary
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.core.csv import csv_writer

COLUMNS = ["time", "actor", "action", "project", "target", "summary", "detail"]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv_writer(_Echo())
    yield writer.writerow(COLUMNS)
    fields = ("created_at", "actor_name", "action", "project_name", "target", "detail")
    for created_at, actor, action, project, target, detail in events.values_list(*fields).iterator(
        chunk_size=2000
    ):
        yield writer.writerow(
            [
                created_at.isoformat(),
                actor,
                action,
                project,
                target,
                summary(detail),
                json.dumps(detail, ensure_ascii=False, sort_keys=True),
            ]
        )


def csv_response(
    project, events: QuerySet[AuditEvent], *, by, filters: dict
) -> StreamingHttpResponse:
    """Record the download, then stream the rows it counted (not the record of the download)."""
    rows = events.count()
    recorded = audit_record(
        actor=by,
        action="audit.exported",
        project=project,
        target=ngettext("%(n)s event", "%(n)s events", rows) % {"n": rows},
        detail={
            "format": "csv",
            "rows": rows,
            "filters": {k: str(v) for k, v in filters.items()},
        },
    )
    response = StreamingHttpResponse(
        csv_lines(events.exclude(pk=recorded.pk)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-audit-{stamp}.csv"'
    return response
