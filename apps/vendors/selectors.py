"""Reads for vendors: the batches an annotator may work on, a vendor as one project sees it."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from apps.projects.capabilities import Cap, Role, role_can
from apps.vendors.models import Batch, BatchItem, Vendor, VendorMember


def batches_for_vendor_user(user, project) -> QuerySet[Batch]:
    """The project's batches sent to the user's vendor, with items left to label."""
    member = VendorMember.objects.filter(user=user).first()
    if member is None:
        return Batch.objects.none()
    return (
        Batch.objects.filter(project=project, vendor_id=member.vendor_id)
        .exclude(status=Batch.Status.DRAFT)
        .annotate(
            item_count=Count("items", distinct=True),
            open_count=Count(
                "items",
                filter=Q(items__status__in=[BatchItem.Status.OPEN, BatchItem.Status.RETURNED]),
                distinct=True,
            ),
        )
    )


def annotators_in(vendor: Vendor, project_id: int) -> QuerySet[VendorMember]:
    """The vendor's annotators who work in the project: those holding its vendor role there.
    Nobody else hears of that project's batches or is shown beside them."""
    return vendor.members.filter(
        user__memberships__project_id=project_id, user__memberships__role=Role.VENDOR
    )


def batch_annotators(batch: Batch) -> dict:
    """The annotators the batch needs (one per label of an item) and how many of its vendor's
    work in its project."""
    return {
        "needed": batch.labels_per_item,
        "available": annotators_in(batch.vendor, batch.project_id).count(),
    }


def vendors_linkable(user, project) -> QuerySet[Vendor]:
    """Vendors the user may share with the project: at home where they manage vendors, not
    yet working for it."""
    managers = [role for role in Role if role_can(role, Cap.MANAGE_VENDORS)]
    return (
        Vendor.objects.filter(
            home_project__memberships__user=user, home_project__memberships__role__in=managers
        )
        .exclude(projects=project)
        .select_related("home_project")
    )


def vendor_quality(vendor, project) -> dict:
    """Across the vendor's batches in the project: gold items labelled right, and the cost
    booked (a vendor shared with other projects shows nothing of their work here)."""
    from django.db.models import F, Sum

    from apps.vendors.models import CostEntry, VendorLabel

    gold = VendorLabel.objects.filter(
        item__batch__vendor=vendor,
        item__batch__project=project,
        item__gold_label__isnull=False,
        label__isnull=False,
    )
    total = gold.count()
    right = gold.filter(label=F("item__gold_label")).count()
    booked = CostEntry.objects.filter(vendor=vendor, project=project).aggregate(
        total=Sum("amount")
    )["total"]
    return {
        "gold_total": total,
        "gold_right": right,
        "gold_accuracy": right / total if total else None,
        "booked": booked,
    }
