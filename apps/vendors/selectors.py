"""Reads for vendors: the batches an annotator may work on."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from apps.vendors.models import Batch, BatchItem, VendorMember


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


def vendor_quality(vendor) -> dict:
    """Across the vendor's batches: gold items labelled right, and the cost booked."""
    from django.db.models import F, Sum

    from apps.vendors.models import CostEntry, VendorLabel

    gold = VendorLabel.objects.filter(
        item__batch__vendor=vendor, item__gold_label__isnull=False, label__isnull=False
    )
    total = gold.count()
    right = gold.filter(label=F("item__gold_label")).count()
    booked = CostEntry.objects.filter(vendor=vendor).aggregate(total=Sum("amount"))["total"]
    return {
        "gold_total": total,
        "gold_right": right,
        "gold_accuracy": right / total if total else None,
        "booked": booked,
    }
