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
