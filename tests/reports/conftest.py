"""A project's books for the report tests: batches, costs, versions and model runs whose report
figures are computed by hand in tests/reports/test_reports.py."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from apps.datasets.models import DatasetVersion, LabelEvent, ModelRun, Sample
from apps.quality.models import RunStatus, ScoringRun
from apps.review.models import Decision
from apps.vendors import services
from apps.vendors.models import Batch, BatchItem, CostEntry, VendorLabel

T0 = dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def books(world, team):
    """Two accepted batches and an open one of vendor Acme, costs, versions and model runs."""
    dataset, _run, _rows = world
    acme = services.vendor_create(
        project=team.project, name="Acme", price_per_item="0.10", turnaround_days=3
    )
    samples = list(Sample.objects.filter(dataset=dataset).order_by("pk"))
    annotator = team.user("vendor")
    services.vendor_member_add(vendor=acme, project=team.project, user=annotator)

    def batch(title, sent, days, status, rounds, work, gold, labels_per_item=1):
        b = Batch.objects.create(
            project=team.project, dataset=dataset, vendor=acme, title=title, price_per_item=Decimal("0.10"),
            currency="USD", status=status, rounds=rounds, labels_per_item=labels_per_item,
            sent_at=sent, submitted_at=sent + dt.timedelta(days=days) if days is not None else None,
        )  # fmt: skip
        items = []
        for n, (sample, gold_label, label) in enumerate(work + gold):
            item = BatchItem.objects.create(
                batch=b, sample=sample, position=n, gold_label=gold_label
            )
            if label:
                VendorLabel.objects.create(item=item, annotator=annotator, label=label)
            items.append(item)
        return b, items

    # Batch A: 3 work items, 2 gold (1 right); 2 days; returned once; accepted in October.
    a, a_items = batch(
        "A", T0, 2, Batch.Status.ACCEPTED, 1,
        [(samples[0], None, "dog"), (samples[1], None, "dog"), (samples[2], None, "bird")],
        [(samples[3], "cat", "cat"), (samples[4], "dog", "cat")],
    )  # fmt: skip
    # Batch B: 2 work items, 1 gold (right); 4 days; accepted in November.
    b, b_items = batch(
        "B", T0 + dt.timedelta(days=30), 4, Batch.Status.ACCEPTED, 0,
        [(samples[5], None, "cat"), (samples[6], None, "cat")], [(samples[7], "bird", "bird")],
    )  # fmt: skip
    # Batch C: open, 5 items, 2 labels each at 0.10: 1.00 committed.
    batch("C", T0 + dt.timedelta(days=40), None, Batch.Status.IN_PROGRESS, 0,
          [(s, None, None) for s in samples[8:13]], [], labels_per_item=2)  # fmt: skip
    for items, month in ((a_items, dt.date(2026, 10, 1)), (b_items, dt.date(2026, 11, 1))):
        for item in items:
            CostEntry.objects.create(
                item=item,
                vendor=acme,
                project=team.project,
                amount=Decimal("0.10"),
                currency="USD",
                month=month,
            )
    CostEntry.objects.filter(month=dt.date(2026, 10, 1)).update(
        created_at=T0 + dt.timedelta(days=3)
    )
    CostEntry.objects.filter(month=dt.date(2026, 11, 1)).update(
        created_at=T0 + dt.timedelta(days=35)
    )
    # Versions: 1 before any spend, 2 after all of it, with 2 vendor changes, one of them
    # confirmed by a review decision (no run before version 2 flagged either).
    v1 = DatasetVersion.objects.create(dataset=dataset, number=1, message="import")
    v2 = DatasetVersion.objects.create(dataset=dataset, number=2, message="fixes")
    DatasetVersion.objects.filter(pk=v1.pk).update(created_at=T0 - dt.timedelta(days=1))
    DatasetVersion.objects.filter(pk=v2.pk).update(created_at=T0 + dt.timedelta(days=40))
    for sample in samples[:2]:
        LabelEvent.objects.create(
            dataset=dataset, sample=sample, version=2, label="dog", source="vendor"
        )
    Decision.objects.create(
        dataset=dataset,
        sample=samples[0],
        outcome="relabel",
        label="dog",
        source="adjudicator",
        version=2,
    )
    ScoringRun.objects.create(
        dataset=dataset, version=2, status=RunStatus.DONE,
        summary={"likely_mislabeled": 7, "noise_by_split": {"train": {"rate": 0.05}}},
    )  # fmt: skip
    ModelRun.objects.create(
        dataset=dataset,
        version=v1,
        name="r1",
        classes=["cat", "dog", "bird"],
        metrics={"test": {"accuracy": 0.80}},
    )
    ModelRun.objects.create(
        dataset=dataset,
        version=v2,
        name="r2",
        classes=["cat", "dog", "bird"],
        metrics={"test": {"accuracy": 0.84}},
    )
    return team.project
