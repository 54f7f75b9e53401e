"""Reads for vendors: the batches an annotator may work on, a vendor as one project sees it, and
what accepting a batch rests on (its checked accuracy) and would change (its relabels)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum

from apps import annotations as task_types
from apps.projects.capabilities import Cap, Role, role_can
from apps.quality.models import SampleScore
from apps.quality.selectors import latest_done_run
from apps.vendors.models import (
    AcceptancePolicy,
    Batch,
    BatchItem,
    CostEntry,
    Vendor,
    VendorLabel,
    VendorMember,
)


def final_label(labels) -> str | None:
    """One item's label from its annotators' labels (VendorLabel rows), by the rule of the
    dataset's task. The rows come from their item (`item.labels`), which knows its batch, so
    finding the dataset costs at most one query per batch."""
    labels = list(labels)
    if not labels:
        return None
    kind = task_types.of(labels[0].item.batch.dataset)
    return kind.agreement.final(label.label for label in labels)


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


CONFIDENCE = 0.95


def acceptance_level(project) -> float:
    """The project's acceptance level; the model's default until a manager sets one."""
    level = AcceptancePolicy.objects.filter(project=project).values_list("level", flat=True).first()
    return level if level is not None else AcceptancePolicy._meta.get_field("level").default


def acceptance_check(batch: Batch) -> dict:
    """The batch's accuracy on the items someone checked, with its 95 % Wilson interval, and
    whether the interval's lower bound reaches the project's acceptance level.

    Checked items: gold items once labelled, right when their final label is the known answer;
    and work items a QA reviewer accepted (right) or returned (wrong). A returned item relabelled
    since is not counted: nobody has checked its new label. The lower bound, not the point
    estimate, meets the level, because a handful of checks proves little: 3 right of 3 reads
    100 % yet says only that the accuracy is at least 44 %."""
    # SciPy is loaded only when a batch's acceptance is checked.
    from scipy.stats import binomtest

    right = gold = qa = 0
    for item in batch.items.prefetch_related("labels"):
        if item.is_gold:
            answer = final_label(item.labels.all())
            if answer is None:  # not labelled yet (or skipped): nothing to check it against
                continue
            gold += 1
            right += answer == item.gold_label
        elif item.qa_by_id and item.status in (
            BatchItem.Status.ACCEPTED,
            BatchItem.Status.RETURNED,
        ):
            qa += 1
            right += item.status == BatchItem.Status.ACCEPTED
    checked, level = gold + qa, acceptance_level(batch.project)
    estimate = low = high = None
    if checked:
        interval = binomtest(right, checked).proportion_ci(
            confidence_level=CONFIDENCE, method="wilson"
        )
        estimate, low, high = right / checked, float(interval.low), float(interval.high)
    meets = low is not None and low >= level
    if not checked:
        why = "No gold item and no QA check: nothing says how accurate the batch is."
    elif not meets:
        why = (
            f"The lower bound of the 95 % interval, {low:.0%}, is below the acceptance level "
            f"of {level:.0%}."
        )
    else:
        why = ""
    return {
        "checked": checked,
        "right": right,
        "gold": gold,
        "qa": qa,
        "estimate": estimate,
        "low": low,
        "high": high,
        "confidence": CONFIDENCE,
        "level": level,
        "meets": meets,
        "why": why,
    }


def acceptance_preview(batch: Batch) -> dict:
    """The relabels accepting the batch makes (work items whose final label differs from the
    sample's), with the newest finished run's view of each: its suggested label and its flag.
    `against_both` counts relabels to a class that neither the previous label nor the model's
    suggestion names (only where the model suggested one); `flagged` those the run flagged."""
    relabels: list[dict[str, Any]] = []
    for item in (
        batch.items.filter(gold_label__isnull=True)
        .select_related("sample")
        .prefetch_related("labels")
        .order_by("position")
    ):
        label = final_label(item.labels.all())
        if label is not None and label != item.sample.label:
            relabels.append(
                {
                    "item": item.pk,
                    "position": item.position,
                    "sample_id": item.sample_id,
                    "external_id": item.sample.external_id,
                    "previous": item.sample.label,
                    "label": label,
                }
            )
    run = latest_done_run(batch.dataset)
    scores: dict[int, tuple[str | None, bool]] = {}
    if run is not None and relabels:
        scores = {
            sample: (suggested, flagged)
            for sample, suggested, flagged in SampleScore.objects.filter(
                run=run, sample_id__in=[r["sample_id"] for r in relabels]
            ).values_list("sample_id", "suggested_label", "likely_mislabeled")
        }
    for row in relabels:
        row["model"], row["flagged"] = scores.get(row["sample_id"], (None, False))
        row["against_both"] = row["model"] is not None and row["model"] not in (
            row["label"],
            row["previous"],
        )
    return {
        "run": run.pk if run else None,
        "count": len(relabels),
        "against_both": sum(1 for r in relabels if r["against_both"]),
        "flagged": sum(1 for r in relabels if r["flagged"]),
        "relabels": relabels,
    }


def batch_acceptance(batch: Batch, preview: dict | None = None) -> dict:
    """What the batch's acceptance rests on: as recorded when it was accepted, else as it
    stands now (the check and the counts of the preview)."""
    if batch.status == Batch.Status.ACCEPTED and batch.acceptance:
        return {**batch.acceptance, "why": ""}
    preview = preview if preview is not None else acceptance_preview(batch)
    return {
        **acceptance_check(batch),
        **{k: preview[k] for k in ("run", "count", "against_both", "flagged")},
    }
