"""What the labelling spend bought: spend, vendor scorecards, data quality over time and model
lift, computed from the records the other apps keep (costs, batches, labels, decisions, runs)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import Count, Sum
from django.utils import timezone

from apps.datasets.models import DatasetVersion, LabelEvent, ModelRun
from apps.quality.models import RunStatus, SampleScore, ScoringRun
from apps.review.models import Decision
from apps.vendors.models import Batch, CostEntry, VendorLabel

OPEN_STATUSES = (
    Batch.Status.SENT,
    Batch.Status.IN_PROGRESS,
    Batch.Status.SUBMITTED,
    Batch.Status.IN_QA,
    Batch.Status.RETURNED,
)


@dataclass
class Period:
    start: date | None = None
    end: date | None = None

    def within(self, when) -> bool:
        if when is None:
            return False
        day = when.date() if isinstance(when, datetime) else when
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        zone = timezone.get_current_timezone()
        low = datetime.combine(self.start, time.min, tzinfo=zone) if self.start else None
        high = datetime.combine(self.end, time.max, tzinfo=zone) if self.end else None
        return low, high


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile, interpolated linearly (NumPy's default); None for no values."""
    return float(np.percentile(values, p)) if values else None


def spend(project, period: Period) -> dict:
    """Booked cost by vendor and month, items labelled, cost per accepted item, and what is
    committed but not yet accepted (items × labels per item × price of open batches)."""
    costs = CostEntry.objects.filter(project=project)
    if period.start:
        costs = costs.filter(month__gte=period.start.replace(day=1))
    if period.end:
        costs = costs.filter(month__lte=period.end)
    rows = list(
        costs.values("vendor__name", "currency", "month")
        .annotate(amount=Sum("amount"), items=Count("id"))
        .order_by("month", "vendor__name")
    )
    total = sum((r["amount"] for r in rows), Decimal(0))
    accepted = sum(r["items"] for r in rows)
    labels = VendorLabel.objects.filter(item__batch__project=project, label__isnull=False)
    low, high = period.bounds()
    if low:
        labels = labels.filter(created_at__gte=low)
    if high:
        labels = labels.filter(created_at__lte=high)
    commitments: list[dict[str, Any]] = []
    for batch in Batch.objects.filter(project=project, status__in=OPEN_STATUSES).select_related(
        "vendor"
    ):
        items = batch.items.count()
        commitments.append(
            {
                "batch": batch.title,
                "vendor": batch.vendor.name,
                "status": batch.get_status_display(),
                "items": items,
                "amount": batch.price_per_item * items * batch.labels_per_item,
                "currency": batch.currency,
            }
        )
    return {
        "by_month": rows,
        "total": total,
        "accepted_items": accepted,
        "labels": labels.count(),
        "cost_per_accepted_item": (total / accepted) if accepted else None,
        "commitments": commitments,
        "committed": sum((c["amount"] for c in commitments), Decimal(0)),
    }


def scorecards(project, period: Period) -> list[dict]:
    """Per vendor: gold accuracy, agreement with in-house review decisions on the same samples,
    turnaround (sent → submitted, in days) median and p90 against the target, rework rate, and
    gold accuracy by month."""
    cards = []
    for vendor in project.vendors.all():
        batches = [
            b
            for b in Batch.objects.filter(project=project, vendor=vendor)
            if period.within(b.sent_at)
        ]
        ids = [b.pk for b in batches]
        gold = VendorLabel.objects.filter(
            item__batch_id__in=ids, item__gold_label__isnull=False, label__isnull=False
        )
        right, total = 0, 0
        by_month: dict[date, list[int]] = defaultdict(lambda: [0, 0])
        # By the month the batch was sent: when the work was ordered.
        for label, answer, when in gold.values_list(
            "label", "item__gold_label", "item__batch__sent_at"
        ):
            if when is None:  # not sent: cannot happen, `ids` holds sent batches only
                continue
            month = when.date().replace(day=1)
            by_month[month][0] += label == answer
            by_month[month][1] += 1
            right += label == answer
            total += 1
        # Agreement: the vendor's label against a review decision on the same sample.
        decided = {
            d.sample_id: (d.label if d.outcome == "relabel" else None)
            for d in Decision.objects.filter(dataset__project=project).exclude(outcome="remove")
        }
        agree = compared = 0
        for sample_id, label, current in VendorLabel.objects.filter(
            item__batch_id__in=ids, label__isnull=False, item__sample_id__in=list(decided)
        ).values_list("item__sample_id", "label", "item__sample__label"):
            wanted = decided[sample_id]
            compared += 1
            # A "keep" decision agrees with the label the sample had; a relabel with its class.
            agree += label == (wanted if wanted is not None else current)
        days = [
            (b.submitted_at - b.sent_at).total_seconds() / 86400
            for b in batches
            if b.sent_at and b.submitted_at
        ]
        finished = [b for b in batches if b.status == Batch.Status.ACCEPTED]
        cards.append(
            {
                "vendor": vendor.name,
                "batches": len(batches),
                "gold_right": right,
                "gold_total": total,
                "gold_accuracy": right / total if total else None,
                "agreement": agree / compared if compared else None,
                "compared": compared,
                "turnaround_median": percentile(days, 50),
                "turnaround_p90": percentile(days, 90),
                "turnaround_target": vendor.turnaround_days,
                "rework_rate": sum(1 for b in finished if b.rounds) / len(finished)
                if finished
                else None,
                "trend": [
                    {"month": m, "accuracy": r / t} for m, (r, t) in sorted(by_month.items())
                ],
            }
        )
    return cards


def quality_over_time(project, period: Period, spent: Decimal) -> list[dict]:
    """Per dataset and version: errors the run flagged, errors confirmed (review decisions to
    relabel or remove), errors fixed (see FIXED_ERROR), the
    estimated label noise per split, and the cost per fixed error over the period."""
    out = []
    for dataset in project.datasets.order_by("name"):
        runs = {
            r.version: r
            for r in ScoringRun.objects.filter(dataset=dataset, status=RunStatus.DONE).order_by(
                "created_at"
            )
        }
        confirmed_by_version = dict(
            Decision.objects.filter(dataset=dataset, version__isnull=False)
            .exclude(outcome="keep")
            .values("version")
            .annotate(n=Count("id"))
            .values_list("version", "n")
        )
        fixed_by_version = fixed_errors_by_version(dataset, list(runs.values()))
        rows: list[dict[str, Any]] = []
        for version in DatasetVersion.objects.filter(dataset=dataset).order_by("number"):
            if not period.within(version.created_at):
                continue
            run = runs.get(version.number)
            summary = run.summary if run else {}
            rows.append(
                {
                    "version": version.number,
                    "created_at": version.created_at,
                    "flagged": summary.get("likely_mislabeled"),
                    "confirmed": confirmed_by_version.get(version.number, 0),
                    "fixed": fixed_by_version.get(version.number, 0),
                    "noise": {
                        split: row.get("rate")
                        for split, row in (summary.get("noise_by_split") or {}).items()
                    },
                }
            )
        fixed = sum(r["fixed"] for r in rows)
        out.append(
            {
                "dataset": dataset.name,
                "versions": rows,
                "fixed": fixed,
                "cost_per_fixed_error": (spent / fixed) if fixed and spent else None,
            }
        )
    return out


FIXED_ERROR = (
    "A fixed error is a label change that a review decision confirmed, or that corrected a "
    "sample the scoring run before it flagged as likely mislabelled; other vendor changes "
    "are not counted."
)


def fixed_errors_by_version(dataset, runs: list[ScoringRun]) -> dict[int, int]:
    """Per version, the samples whose committed change (by review or a vendor) was a fixed
    error in the sense of FIXED_ERROR. A vendor's change alone proves nothing: it may relabel
    a sample nobody doubted, so it needs a decision that agrees or a flag it answered."""
    events = list(
        LabelEvent.objects.filter(
            dataset=dataset, version__isnull=False, source__in=["review", "vendor"]
        ).values_list("pk", "sample_id", "version", "label", "removed")
    )
    if not events:
        return {}
    made_by_decision: set[int] = set()
    agreed: set[tuple[int, str | None]] = set()  # (sample, label), None for a removal
    for event_id, sample_id, outcome, label in (
        Decision.objects.filter(dataset=dataset)
        .exclude(outcome="keep")
        .values_list("event_id", "sample_id", "outcome", "label")
    ):
        if event_id:
            made_by_decision.add(event_id)
        agreed.add((sample_id, None if outcome == "remove" else label))
    # The run that judged the labels a version changed: the newest finished one of an earlier
    # version (a run of the same or a later version scored the changed labels instead).
    newest_first = sorted(runs, key=lambda r: (r.created_at, r.pk), reverse=True)
    judge = {
        version: next((r.pk for r in newest_first if r.version < version), None)
        for version in {e[2] for e in events if e[2] is not None}
    }
    flagged = set(
        SampleScore.objects.filter(
            run_id__in={pk for pk in judge.values() if pk},
            sample_id__in={e[1] for e in events},
            likely_mislabeled=True,
        ).values_list("run_id", "sample_id")
    )
    fixed: dict[int, set[int]] = defaultdict(set)
    for event_id, sample_id, version, label, removed in events:
        if version is None:  # excluded by the query; says so to the type checker
            continue
        if (
            event_id in made_by_decision
            or (sample_id, None if removed else label) in agreed
            or (judge[version], sample_id) in flagged
        ):
            fixed[version].add(sample_id)
    return {version: len(samples) for version, samples in fixed.items()}


def model_lift(project, metric: str = "accuracy") -> list[dict]:
    """Per dataset: each model run's metric (its test split, else any) against the spend booked
    up to its dataset version's date, and the gain per 1,000 spent from the first run."""
    costs = list(
        CostEntry.objects.filter(project=project)
        .values_list("created_at", "amount")
        .order_by("created_at")
    )
    out = []
    for dataset in project.datasets.order_by("name"):
        points: list[dict[str, Any]] = []
        for run in (
            ModelRun.objects.filter(dataset=dataset)
            .select_related("version")
            .order_by("created_at")
        ):
            value = _metric(run.metrics, metric)
            if value is None:
                continue
            when = run.version.created_at if run.version else run.created_at
            spent = sum((a for t, a in costs if t <= when), Decimal(0))
            points.append(
                {
                    "run": run.name,
                    "version": run.version.number if run.version else None,
                    "value": value,
                    "spent": spent,
                }
            )
        gain = None
        if len(points) > 1 and points[-1]["spent"] > points[0]["spent"]:
            gain = (
                (points[-1]["value"] - points[0]["value"])
                / float(points[-1]["spent"] - points[0]["spent"])
                * 1000
            )
        out.append(
            {"dataset": dataset.name, "metric": metric, "points": points, "gain_per_1000": gain}
        )
    return out


def _metric(metrics: dict, name: str) -> float | None:
    if not isinstance(metrics, dict):
        return None
    if isinstance(metrics.get(name), int | float):
        return float(metrics[name])
    for split in ("test", "validation", "train"):
        value = (
            (metrics.get(split) or {}).get(name) if isinstance(metrics.get(split), dict) else None
        )
        if isinstance(value, int | float):
            return float(value)
    return None


def report(project, period: Period) -> dict:
    money = spend(project, period)
    return {
        "spend": money,
        "scorecards": scorecards(project, period),
        "quality": quality_over_time(project, period, money["total"]),
        "lift": model_lift(project),
    }
