"""Writes for labelling vendors: vendors and their annotators, relabel batches through their
lifecycle, vendor labels, QA, accepted labels as a version, and the cost of accepted items."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Sum, TextField
from django.db.models.functions import MD5, Cast
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from apps import annotations as task_types
from apps.core import events
from apps.datasets import services as dataset_services
from apps.datasets.models import Dataset, LabelSource, Sample
from apps.explorer.selectors import samples_chosen
from apps.projects.capabilities import Cap, Role
from apps.projects.models import Membership, Project
from apps.quality.models import SampleScore
from apps.vendors.access import manages_vendors
from apps.vendors.models import (
    AcceptancePolicy,
    Batch,
    BatchItem,
    CostEntry,
    Vendor,
    VendorLabel,
    VendorMember,
)
from apps.vendors.selectors import (
    acceptance_check,
    acceptance_preview,
    annotators_in,
    final_label,
)

BATCH_MAX_ITEMS = 5_000
WORKING = (Batch.Status.SENT, Batch.Status.IN_PROGRESS, Batch.Status.RETURNED)


def _name_free(project: Project, name: str) -> None:
    """Two vendors of one name in a project could not be told apart on its pages."""
    if project.vendors.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"A vendor named {name} already works for this project."})


@transaction.atomic
def vendor_create(
    *,
    project: Project,
    name: str,
    contact: str = "",
    price_per_item: Decimal | float | str = 0,
    currency: str = "USD",
    turnaround_days: int = 7,
) -> Vendor:
    """A new vendor at home in the project. A vendor of the same name elsewhere is another
    tenant's and stays apart: sharing one is `vendor_link`."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the vendor a name."})
    currency = (currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationError({"currency": "A three-letter currency code, e.g. USD."})
    try:
        price = Decimal(str(price_per_item))
    except ArithmeticError:
        raise ValidationError({"price_per_item": "A price, e.g. 0.08."}) from None
    if price < 0:
        raise ValidationError({"price_per_item": "A price is not negative."})
    _name_free(project, name)
    vendor = Vendor.objects.create(
        home_project=project,
        name=name,
        contact=contact,
        price_per_item=price,
        currency=currency,
        turnaround_days=turnaround_days,
    )
    vendor.projects.add(project)
    return vendor


@transaction.atomic
def vendor_link(*, vendor: Vendor, project: Project, by) -> Vendor:
    """The vendor works for another project too: the act of someone who manages vendors both
    in the vendor's home project and in that project."""
    if not (manages_vendors(by, vendor.home_project_id) and manages_vendors(by, project.pk)):
        raise PermissionDenied("Sharing a vendor needs vendor management in both projects.")
    if vendor.projects.filter(pk=project.pk).exists():
        raise ValidationError({"vendor": f"{vendor.name} already works for {project.name}."})
    _name_free(project, vendor.name)
    vendor.projects.add(project)
    events.record(
        events.Event(
            "vendor.linked",
            project=project,
            actor=by,
            activity=f"linked vendor {vendor.name} to this project",
            url=reverse("vendors:project", args=[project.slug]),
        )
    )
    return vendor


@transaction.atomic
def vendor_member_add(*, vendor: Vendor, project: Project, user) -> VendorMember:
    """An annotator of the vendor: a member of the project with the vendor role, and of no
    other vendor (the database's unique user holds that too)."""
    if not vendor.projects.filter(pk=project.pk).exists():
        raise ValidationError({"vendor": f"{vendor.name} does not work for {project.name}."})
    if not Membership.objects.filter(project=project, user=user, role=Role.VENDOR).exists():
        raise ValidationError({"user": f"{user.username} needs the vendor role in {project.name}."})
    existing = VendorMember.objects.filter(user=user).select_related("vendor").first()
    if existing is not None and existing.vendor_id != vendor.pk:
        # Another tenant's vendor is not named: its name is that tenant's business.
        works_here = existing.vendor.projects.filter(pk=project.pk).exists()
        other = existing.vendor.name if works_here else "a vendor of another project"
        raise ValidationError({"user": f"{user.username} already works for {other}."})
    member, _ = VendorMember.objects.get_or_create(user=user, defaults={"vendor": vendor})
    return member


@transaction.atomic
def batch_create(
    *,
    dataset: Dataset,
    vendor: Vendor,
    by,
    title: str,
    instructions: str = "",
    query=None,
    ordering: str = "",
    run=None,
    ids=None,
    samples=None,
    price_per_item=None,
    due_date=None,
    labels_per_item: int = 1,
    gold_share: float = 0.0,
    priority: int = 2,
) -> Batch:
    """A draft batch of the query's samples (or the ticked ones), with gold items mixed in:
    labelled samples outside the selection that the newest run does not flag, their current
    label the known answer. The order is shuffled, so gold items look like any other.
    `samples` (a rule's matches) stands for the query's page when given."""
    if not vendor.projects.filter(pk=dataset.project_id).exists():
        raise ValidationError({"vendor": f"{vendor.name} does not work for this project."})
    title = (title or "").strip()
    if not title:
        raise ValidationError({"title": "Give the batch a title."})
    if not 1 <= int(labels_per_item) <= 5:
        raise ValidationError({"labels_per_item": "1 to 5 labels per item."})
    if not 0 <= float(gold_share) <= 0.5:
        raise ValidationError({"gold_share": "A share of gold items from 0 to 0.5."})
    chosen = samples_chosen(
        dataset,
        query=query,
        run=run,
        ordering=ordering,
        ids=ids,
        samples=samples,
        limit=BATCH_MAX_ITEMS,
    )
    if not chosen:
        raise ValidationError({"query": "No sample matches: the batch would be empty."})
    gold_count = round(len(chosen) * gold_share / (1 - gold_share)) if gold_share else 0
    gold = _gold_candidates(dataset, run, exclude={s.pk for s in chosen}, count=gold_count)
    if len(gold) < gold_count:
        raise ValidationError(
            {"gold_share": f"Only {len(gold)} trusted labelled samples can serve as gold items."}
        )
    batch = Batch.objects.create(
        project=dataset.project,
        dataset=dataset,
        vendor=vendor,
        title=title,
        instructions=instructions,
        query=query or {},
        price_per_item=Decimal(str(price_per_item))
        if price_per_item not in (None, "")
        else vendor.price_per_item,
        currency=vendor.currency,
        due_date=due_date,
        labels_per_item=int(labels_per_item),
        gold_share=float(gold_share),
        priority=int(priority),
        created_by=by,
    )
    entries = [(s, None) for s in chosen] + [(s, s.label) for s in gold]
    # Unpredictable order: nothing about a position tells a gold item from the others.
    secrets.SystemRandom().shuffle(entries)
    BatchItem.objects.bulk_create(
        BatchItem(batch=batch, sample=s, position=i, gold_label=g)
        for i, (s, g) in enumerate(entries)
    )
    events.record(
        events.Event(
            "batch.drafted",
            project=dataset.project,
            actor=by,
            activity=ngettext(
                "drafted relabel batch “%(title)s” for %(vendor)s (%(n)s item, %(gold)s gold)",
                "drafted relabel batch “%(title)s” for %(vendor)s (%(n)s items, %(gold)s gold)",
                len(chosen),
            )
            % {"title": title, "vendor": vendor.name, "n": len(chosen), "gold": len(gold)},
            url=reverse("vendors:batch", args=[batch.pk]),
        )
    )
    return batch


@transaction.atomic
def batch_items_add(*, batch: Batch, samples, by) -> int:
    """Append samples of the batch's dataset to a draft batch; samples already in it are left
    alone. Returns how many were added."""
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != Batch.Status.DRAFT:
        raise ValidationError({"batch": f"Batch “{batch.title}” is no longer a draft."})
    fresh = dataset_services.queue_append(
        items=batch.items,
        dataset_id=batch.dataset_id,
        samples=samples,
        limit=BATCH_MAX_ITEMS,
        make=lambda s, position: BatchItem(batch=batch, sample=s, position=position),
    )
    if fresh:
        events.record(
            events.Event(
                "batch.items_added",
                project=batch.project,
                actor=by,
                activity=ngettext(
                    "added %(n)s item to relabel batch “%(title)s”",
                    "added %(n)s items to relabel batch “%(title)s”",
                    len(fresh),
                )
                % {"n": len(fresh), "title": batch.title},
                url=reverse("vendors:batch", args=[batch.pk]),
            )
        )
    return len(fresh)


def _gold_candidates(dataset: Dataset, run, *, exclude: set[int], count: int) -> list[Sample]:
    if count <= 0:
        return []
    samples = Sample.objects.filter(dataset=dataset, active=True, label__isnull=False).exclude(
        pk__in=exclude
    )
    if run is not None:
        samples = samples.exclude(
            pk__in=SampleScore.objects.filter(run=run, likely_mislabeled=True).values("sample_id")
        )
    # A spread of the dataset, the same for the same batch: ordered by a hash of the id.
    return list(samples.order_by(MD5(Cast("pk", TextField())))[:count])


def _transition(batch: Batch, allowed: tuple, to: str, **fields) -> Batch:
    locked = Batch.objects.select_for_update().get(pk=batch.pk)
    if locked.status not in allowed:
        names = ", ".join(Batch.Status(s).label.lower() for s in allowed)
        raise ValidationError(
            {
                "status": f"The batch is {locked.get_status_display().lower()}; this needs it {names}."
            }
        )
    locked.status = to
    for key, value in fields.items():
        setattr(locked, key, value)
    locked.save(update_fields=["status", *fields])
    return locked


@transaction.atomic
def batch_send(*, batch: Batch, by, site_url: str = "") -> Batch:
    """Send a draft to its vendor's annotators in the project. Refused when they are fewer
    than the labels each item needs: one annotator labels an item once, so such a batch could
    never be submitted. `site_url` is the root the e-mails' links start with."""
    batch = _transition(batch, (Batch.Status.DRAFT,), Batch.Status.SENT, sent_at=timezone.now())
    annotators = list(annotators_in(batch.vendor, batch.project_id).select_related("user"))
    if len(annotators) < batch.labels_per_item:
        needed = batch.labels_per_item
        raise ValidationError(
            {
                "vendor": f"“{batch.title}” needs {needed} annotator{'s' * (needed != 1)}; "
                f"{batch.vendor.name} has {len(annotators)} in this project."
            }
        )
    n_items = batch.items.count()
    events.record(
        events.Event(
            "batch.sent",
            project=batch.project,
            actor=by,
            activity=f"sent batch “{batch.title}” to {batch.vendor.name}",
            url=reverse("vendors:batch", args=[batch.pk]),
            notice=events.Notice(
                users=tuple(m.user for m in annotators),
                kind="batch",
                text=ngettext(
                    "New batch “%(title)s” (%(n)s item)",
                    "New batch “%(title)s” (%(n)s items)",
                    n_items,
                )
                % {"title": batch.title, "n": n_items},
                url=reverse("vendors:work", args=[batch.pk]),
                site_url=site_url,
            ),
        )
    )
    return batch


@transaction.atomic
def label_set(
    *, item: BatchItem, annotator, label: str | None = None, skip_reason: str = ""
) -> VendorLabel:
    """The annotator's label of an item, or a skip with the reason; changeable until the batch
    is submitted (and for returned items, during rework)."""
    batch = Batch.objects.select_for_update().get(pk=item.batch_id)
    if batch.status not in WORKING:
        raise ValidationError({"detail": "This batch is not open for labelling."})
    if batch.status == Batch.Status.RETURNED and item.status not in (
        BatchItem.Status.RETURNED,
        BatchItem.Status.OPEN,
    ):
        raise ValidationError({"detail": "Only the returned items are open for rework."})
    dataset = batch.dataset
    if label is not None and (
        problem := task_types.of(dataset).values.check(label, schema=dataset.labels)
    ):
        raise ValidationError({"label": problem.message})
    skip_reason = (skip_reason or "").strip()
    if label is None and not skip_reason:
        raise ValidationError({"skip_reason": "Say why you skip this item."})
    vendor_label, _ = VendorLabel.objects.update_or_create(
        item=item,
        annotator=annotator,
        defaults={
            "label": label,
            "skip_reason": "" if label else skip_reason,
            "source": "workspace",
        },
    )
    done = item.labels.count() >= batch.labels_per_item
    BatchItem.objects.filter(pk=item.pk).update(
        status=BatchItem.Status.DONE if done else item.status
    )
    if batch.status == Batch.Status.SENT:
        batch.status = Batch.Status.IN_PROGRESS
        batch.save(update_fields=["status"])
    return vendor_label


@transaction.atomic
def batch_submit(*, batch: Batch, by) -> Batch:
    left = batch.items.exclude(status=BatchItem.Status.DONE).exclude(
        status=BatchItem.Status.ACCEPTED
    )
    if left.exists():
        n_left = left.count()
        raise ValidationError(
            {
                "detail": ngettext(
                    "%(n)s item still needs a label.", "%(n)s items still need labels.", n_left
                )
                % {"n": n_left}
            }
        )
    batch = _transition(
        batch,
        (Batch.Status.SENT, Batch.Status.IN_PROGRESS, Batch.Status.RETURNED),
        Batch.Status.SUBMITTED,
        submitted_at=timezone.now(),
    )
    events.record(
        events.Event(
            "batch.submitted",
            project=batch.project,
            actor=by,
            payload={
                "batch": {"id": batch.pk, "title": batch.title},
                "vendor": {"id": batch.vendor_id, "name": batch.vendor.name},
                "items": batch.items.count(),
                "url": reverse("vendors:batch", args=[batch.pk]),
            },
        )
    )
    return batch


@transaction.atomic
def qa_start(*, batch: Batch, by) -> Batch:
    return _transition(batch, (Batch.Status.SUBMITTED,), Batch.Status.IN_QA)


@transaction.atomic
def item_review(*, item: BatchItem, by, accept: bool, note: str = "") -> BatchItem:
    """A QA reviewer accepts an item, or returns it with a note for rework."""
    if (
        Batch.objects.filter(pk=item.batch_id).values_list("status", flat=True).first()
        != Batch.Status.IN_QA
    ):
        raise ValidationError({"detail": "Start QA on the submitted batch first."})
    if not accept and not (note or "").strip():
        raise ValidationError({"note": "Say what to fix."})
    item.status = BatchItem.Status.ACCEPTED if accept else BatchItem.Status.RETURNED
    item.qa_note, item.qa_by = (note or "").strip(), by
    item.save(update_fields=["status", "qa_note", "qa_by"])
    return item


@transaction.atomic
def batch_return(*, batch: Batch, by, notes: str, site_url: str = "") -> Batch:
    if not batch.items.filter(status=BatchItem.Status.RETURNED).exists():
        raise ValidationError({"detail": "Return at least one item, with a note, first."})
    if not (notes or "").strip():
        raise ValidationError({"notes": "Say what the rework is about."})
    batch = _transition(
        batch,
        (Batch.Status.IN_QA,),
        Batch.Status.RETURNED,
        rework_notes=notes.strip(),
        rounds=batch.rounds + 1,
    )
    events.record(
        events.Event(
            "batch.returned",
            project=batch.project,
            actor=by,
            notice=events.Notice(
                users=tuple(
                    m.user
                    for m in annotators_in(batch.vendor, batch.project_id).select_related("user")
                ),
                kind="batch",
                text=f"“{batch.title}” came back for rework",
                url=reverse("vendors:work", args=[batch.pk]),
                site_url=site_url,
            ),
        )
    )
    return batch


@transaction.atomic
def acceptance_level_set(*, project: Project, level: float, by) -> AcceptancePolicy:
    """Set the accuracy a batch's checks must show (the interval's lower bound) to be accepted
    without an override; a change is audited, since it decides what gets paid for unasked."""
    try:
        level = float(level)
    except (TypeError, ValueError):
        raise ValidationError(
            {"level": "Acceptance level: a share from 0 to 1, e.g. 0.8."}
        ) from None
    if not 0 <= level <= 1:  # also refuses NaN
        raise ValidationError({"level": "Acceptance level: a share from 0 to 1, e.g. 0.8."})
    policy, _ = AcceptancePolicy.objects.select_for_update().get_or_create(project=project)
    if policy.level != level:
        events.record(
            events.Event(
                "batch_acceptance.changed",
                project=project,
                actor=by,
                audit=events.Audit(
                    target="Batch acceptance level", detail={"level": [policy.level, level]}
                ),
            )
        )
        policy.level = level
        policy.save(update_fields=["level"])
    return policy


@transaction.atomic
def batch_accept(*, batch: Batch, by, override_reason: str = "") -> Batch:
    """Accept the batch: its (non-gold) labels go to the draft with the vendor as source and
    become a new version; every item books its price to the vendor and this month. Unless the
    checked items' accuracy reaches the project's level (see `acceptance_check`), accepting
    needs an override with a reason, kept on the batch and in the audit log."""
    if batch.items.filter(status=BatchItem.Status.RETURNED).exists():
        raise ValidationError(
            {"detail": "Some items are returned: send the batch back for rework."}
        )
    batch = _transition(
        batch, (Batch.Status.IN_QA,), Batch.Status.ACCEPTED, accepted_at=timezone.now()
    )
    check = acceptance_check(batch)
    preview = acceptance_preview(batch)
    override_reason = (override_reason or "").strip() if not check["meets"] else ""
    if not check["meets"] and not override_reason:
        raise ValidationError(
            {"override_reason": f"{check['why']} To accept anyway, give a reason for the override."}
        )
    batch.acceptance = {
        **{k: check[k] for k in ("checked", "right", "gold", "qa", "estimate", "low", "high")},
        **{k: check[k] for k in ("confidence", "level", "meets")},
        **{k: preview[k] for k in ("run", "count", "against_both", "flagged")},
    }
    batch.override_reason = override_reason
    batch.save(update_fields=["acceptance", "override_reason"])
    if override_reason:
        events.record(
            events.Event(
                "batch.accepted_by_override",
                project=batch.project,
                actor=by,
                audit=events.Audit(
                    target=f"{batch.title} (batch {batch.pk})",
                    detail={
                        "batch_id": batch.pk,
                        "vendor": batch.vendor.name,
                        "reason": override_reason,
                        "checked": check["checked"],
                        "accuracy": check["estimate"],
                        "lower_bound": check["low"],
                        "level": check["level"],
                        "relabels": preview["count"],
                    },
                ),
            )
        )
    items = list(batch.items.select_related("sample").prefetch_related("labels"))
    changes = 0
    for item in items:
        if item.is_gold:
            continue
        label = final_label(item.labels.all())
        if label is not None and label != item.sample.label:
            dataset_services.sample_relabel(
                sample=item.sample,
                label=label,
                by=by,
                reason=f"Batch “{batch.title}” by {batch.vendor.name}",
                source=LabelSource.VENDOR,
            )
            changes += 1
    BatchItem.objects.filter(batch=batch).update(status=BatchItem.Status.ACCEPTED)
    month = timezone.now().date().replace(day=1)
    CostEntry.objects.bulk_create(
        CostEntry(
            item=item,
            vendor=batch.vendor,
            project=batch.project,
            amount=batch.price_per_item * sum(1 for label in item.labels.all() if label.label),
            currency=batch.currency,
            month=month,
        )
        for item in items
    )
    if changes:
        version = dataset_services.version_commit(
            dataset=batch.dataset,
            by=by,
            message=f"Labels of batch “{batch.title}” ({batch.vendor.name})",
        )
        batch.version = version.number
        batch.save(update_fields=["version"])
    events.record(
        events.Event(
            "batch.accepted",
            project=batch.project,
            actor=by,
            activity=ngettext(
                "accepted batch “%(title)s”: %(n)s label changed",
                "accepted batch “%(title)s”: %(n)s labels changed",
                changes,
            )
            % {"title": batch.title, "n": changes},
            url=reverse("vendors:batch", args=[batch.pk]),
        )
    )
    return batch


# The batch actions the page and the API both offer: who may take each, and its service.
BATCH_ACTIONS: dict[str, tuple[Cap, Callable[..., Batch]]] = {
    "send": (Cap.MANAGE_VENDORS, batch_send),
    "qa": (Cap.QA, qa_start),
    "accept": (Cap.QA, batch_accept),
    "return": (Cap.QA, batch_return),
}


def batch_action_extra(action: str, data, *, site_url: str) -> dict:
    """What a batch action takes besides the batch: rework notes, the reason for accepting below
    the project's level, and the site's root for the links in the e-mails of the actions that
    notify the vendor. `data` is the form's POST or the API's validated body."""
    extra: dict = {}
    if action == "return":
        extra["notes"] = data.get("notes", "")
    if action == "accept":
        extra["override_reason"] = data.get("override_reason", "")
    if action in ("send", "return"):
        extra["site_url"] = site_url
    return extra


def batch_stats(batch: Batch) -> dict:
    """Progress, gold accuracy per annotator and for the vendor, agreement between labels."""
    items = list(batch.items.prefetch_related("labels__annotator"))
    per: dict[str, list[int]] = {}
    gold_right = gold_total = 0
    agree = multi = 0
    for item in items:
        labels = [label for label in item.labels.all() if label.label is not None]
        if item.is_gold:
            for label in labels:
                name = label.annotator.username if label.annotator else "—"
                per.setdefault(name, [0, 0])
                per[name][0] += label.label == item.gold_label
                per[name][1] += 1
                gold_right += label.label == item.gold_label
                gold_total += 1
        if len(labels) > 1:
            multi += 1
            agree += len({label.label for label in labels}) == 1
    counts = Counter(item.status for item in items)
    booked = CostEntry.objects.filter(item__batch=batch).aggregate(total=Sum("amount"))["total"]
    return {
        "cost": booked,
        "items": len(items),
        "gold": sum(1 for i in items if i.is_gold),
        "by_status": dict(counts),
        "labelled": counts.get(BatchItem.Status.DONE, 0) + counts.get(BatchItem.Status.ACCEPTED, 0),
        "gold_accuracy": gold_right / gold_total if gold_total else None,
        "gold_by_annotator": {
            name: {"right": r, "total": t, "accuracy": r / t}
            for name, (r, t) in sorted(per.items())
        },
        "agreement": agree / multi if multi else None,
        "overdue": bool(
            batch.due_date
            and batch.status not in (Batch.Status.ACCEPTED, Batch.Status.DRAFT)
            and batch.due_date < timezone.now().date()
        ),
    }


def batches_overdue(project: Project):
    return Batch.objects.filter(project=project, due_date__lt=timezone.now().date()).exclude(
        status__in=[Batch.Status.ACCEPTED, Batch.Status.DRAFT]
    )


def qa_sample(batch: Batch, size: int) -> list[int]:
    """Ids of a random sample of the batch's labelled items for a QA reviewer to check: the
    same for the same batch and round, so the page can be reloaded."""
    ids = sorted(batch.items.exclude(status=BatchItem.Status.OPEN).values_list("pk", flat=True))
    # Seeded by batch and round: reproducible, not a secret (QA picks, vendors never see it).
    chooser = random.Random(f"{batch.pk}-{batch.rounds}")  # noqa: S311
    return sorted(chooser.sample(ids, min(size, len(ids))))
