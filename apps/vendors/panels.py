"""Vendors' part of the sample table: sending the selection to a vendor as a draft batch."""

from __future__ import annotations

from apps.core.panels import panel_register
from apps.projects.capabilities import Cap


def table_context(request, context: dict) -> dict:
    dataset, membership = context["dataset"], context["membership"]
    return {
        "can_manage_vendors": membership.can(Cap.MANAGE_VENDORS),
        "vendors": list(dataset.project.vendors.all()),
    }


def register() -> None:
    panel_register(
        "samples.actions", template="vendors/panels/batch_start.html", context=table_context
    )
