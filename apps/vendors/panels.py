"""Vendors' parts of other apps' pages: on the sample table, sending the selection to a vendor
as a draft batch; on a vendor annotator's project page, the batches assigned to them."""

from __future__ import annotations

from apps.core.panels import panel_register
from apps.projects.capabilities import Cap
from apps.vendors.selectors import batches_for_vendor_user


def table_context(request, context: dict) -> dict:
    dataset, membership = context["dataset"], context["membership"]
    return {
        "can_manage_vendors": membership.can(Cap.MANAGE_VENDORS),
        "vendors": list(dataset.project.vendors.all()),
    }


def vendor_home_context(request, context: dict) -> dict:
    return {"batches": batches_for_vendor_user(request.user, context["project"])}


def register() -> None:
    panel_register(
        "samples.actions", template="vendors/panels/batch_start.html", context=table_context
    )
    panel_register(
        "vendor_home.batches",
        template="vendors/panels/assigned_batches.html",
        context=vendor_home_context,
    )
