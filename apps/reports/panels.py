"""The reports' part of the project page: its Report link, for those who may read the reports."""

from __future__ import annotations

from apps.core.panels import panel_register
from apps.reports.access import may_see_reports


def report_link_context(request, context: dict) -> dict:
    return {"can_see_reports": may_see_reports(context["membership"])}


def register() -> None:
    panel_register(
        "project.actions",
        template="reports/panels/report_link.html",
        context=report_link_context,
    )
