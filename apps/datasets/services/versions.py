"""Label changes and removals go into a dataset's draft; committing the draft makes a version."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.urls import reverse

from apps import annotations as task_types
from apps.core import events
from apps.datasets.models import Dataset, DatasetVersion, LabelEvent, LabelSource, Sample


@transaction.atomic
def sample_relabel(
    *, sample: Sample, label: str | None, by, reason: str = "", source: str = LabelSource.MANUAL
) -> LabelEvent:
    """Put a label change in the dataset's draft (one draft change per sample; the newest wins)."""
    dataset = sample.dataset
    if label is not None and (
        problem := task_types.of(dataset).values.check(label, schema=dataset.labels)
    ):
        raise ValidationError({"label": problem.message})
    return _draft_event(
        sample=sample, label=label, removed=False, by=by, reason=reason, source=source
    )


@transaction.atomic
def sample_remove(
    *, sample: Sample, by, reason: str = "", source: str = LabelSource.MANUAL
) -> LabelEvent:
    """Put the sample's removal from the dataset in the draft."""
    return _draft_event(
        sample=sample, label=sample.label, removed=True, by=by, reason=reason, source=source
    )


def _draft_event(
    *, sample: Sample, label, removed: bool, by, reason: str, source: str
) -> LabelEvent:
    LabelEvent.objects.filter(sample=sample, version=None).delete()
    return LabelEvent.objects.create(
        dataset=sample.dataset,
        sample=sample,
        version=None,
        label=label,
        removed=removed,
        source=source,
        by=by,
        reason=reason,
    )


@transaction.atomic
def draft_discard(*, dataset: Dataset) -> int:
    deleted, _ = LabelEvent.objects.filter(dataset=dataset, version=None).delete()
    return deleted


@transaction.atomic
def version_commit(*, dataset: Dataset, by, message: str) -> DatasetVersion:
    """Make the draft an immutable version: stamp its changes and apply them to the samples."""
    Dataset.objects.select_for_update().filter(
        pk=dataset.pk
    ).first()  # one commit or import at a time
    draft = LabelEvent.objects.filter(dataset=dataset, version=None)
    if not draft.exists():
        raise ValidationError({"draft": "The draft has no changes to commit."})
    if not (message or "").strip():
        raise ValidationError({"message": "Say what the version changes."})
    number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    with connection.cursor() as cur:
        cur.execute(
            """SELECT
                 count(*) FILTER (WHERE e.removed AND s.active),
                 count(*) FILTER (WHERE NOT e.removed AND NOT s.active),
                 count(*) FILTER (WHERE NOT e.removed AND s.active AND e.label IS DISTINCT FROM s.label)
               FROM datasets_labelevent e JOIN datasets_sample s ON s.id = e.sample_id
               WHERE e.dataset_id = %s AND e.version IS NULL""",
            [dataset.pk],
        )
        removed, added, relabelled = cur.fetchone()
        cur.execute(
            """UPDATE datasets_sample s SET label = e.label, active = NOT e.removed
               FROM datasets_labelevent e
               WHERE e.sample_id = s.id AND e.dataset_id = %s AND e.version IS NULL""",
            [dataset.pk],
        )
    draft.update(version=number)
    total = dataset.samples.filter(active=True).count()
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=number,
        message=message.strip(),
        author=by,
        stats={
            "samples": total,
            "added": added,
            "removed": removed,
            "relabelled": relabelled,
            "updated": 0,
        },
    )
    events.record(
        events.Event(
            "version.committed",
            project=dataset.project,
            actor=by,
            payload={
                "dataset": {"id": dataset.pk, "name": dataset.name},
                "version": number,
                "message": version.message,
                "stats": version.stats,
                "url": reverse("datasets:versions", args=[dataset.pk]),
            },
        )
    )
    return version
