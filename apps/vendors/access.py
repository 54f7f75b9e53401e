"""Who may see a batch: the project's staff by the role table, and a vendor's annotators only
the batches sent to their vendor, only the items in them. Anything else is a 404."""

from __future__ import annotations

from django.http import Http404

from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap, Role
from apps.projects.models import Membership
from apps.vendors.models import Batch, BatchItem, Vendor, VendorMember


def get_batch_for_staff(user, pk: int, *, need: Cap = Cap.VIEW) -> Batch:
    batch = Batch.objects.select_related("project", "dataset", "vendor").filter(pk=pk).first()
    if batch is None:
        raise Http404("No such batch.")
    get_membership_for_user(user, pk=batch.project_id, need=need)
    return batch


def get_batch_for_vendor(user, pk: int) -> Batch:
    """A batch of the annotator's vendor, sent to it, in a project where they hold the vendor
    role; else 404 (drafts are not theirs yet)."""
    member = VendorMember.objects.filter(user=user).first() if user.is_authenticated else None
    batch = (
        Batch.objects.select_related("project", "dataset", "vendor")
        .filter(pk=pk, vendor_id=getattr(member, "vendor_id", None))
        .exclude(status=Batch.Status.DRAFT)
        .first()
    )
    if (
        batch is None
        or not Membership.objects.filter(
            project_id=batch.project_id, user=user, role=Role.VENDOR
        ).exists()
    ):
        raise Http404("No such batch.")
    return batch


def get_item_of_batch(batch: Batch, item_id: int) -> BatchItem:
    item = batch.items.select_related("sample").filter(pk=item_id).first()
    if item is None:
        raise Http404("No such item.")
    return item


def vendor_may_see_image(user, dataset_id: int, path: str) -> bool:
    """A vendor annotator may fetch an image only of an item assigned to their vendor."""
    member = VendorMember.objects.filter(user=user).first() if user.is_authenticated else None
    if member is None:
        return False
    return (
        BatchItem.objects.filter(
            batch__vendor_id=member.vendor_id,
            batch__dataset_id=dataset_id,
            sample__image=path,
            batch__project__memberships__user=user,
            batch__project__memberships__role=Role.VENDOR,
        )
        .exclude(batch__status=Batch.Status.DRAFT)
        .exists()
    )


def manages_vendors(user, project_id: int | None) -> bool:
    """Whether the user holds the manage-vendors capability in the project."""
    membership = Membership.objects.filter(user=user, project_id=project_id).first()
    return membership is not None and membership.can(Cap.MANAGE_VENDORS)


def get_vendor_to_link(user, pk) -> Vendor:
    """A vendor the user may share with another project: one at home in a project where they
    manage vendors. Any other vendor is the 404 of one that does not exist."""
    vendor = Vendor.objects.filter(pk=pk).first() if str(pk).isdigit() else None
    if (
        vendor is None
        or not user.is_authenticated
        or not manages_vendors(user, vendor.home_project_id)
    ):
        raise Http404("No such vendor.")
    return vendor
