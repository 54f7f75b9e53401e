"""Creating and deleting datasets."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction

from apps import annotations as task_types
from apps.annotations import Task
from apps.core import events
from apps.datasets.models import Dataset, Modality
from apps.datasets.selectors import text_model_path
from apps.datasets.services.sort_indexes import sort_indexes_drop


@transaction.atomic
def dataset_create(
    *,
    project,
    name: str,
    modality: str = Modality.TEXT,
    task: str = Task.CLASSIFICATION,
    labels=(),
    description: str = "",
    by,
) -> Dataset:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A dataset needs a name."})
    if modality not in Modality.values:
        raise ValidationError(
            {"modality": f"Unknown modality {modality!r}; use one of {', '.join(Modality.values)}."}
        )
    if task not in task_types.creatable():
        offered = ", ".join(task_types.creatable())
        raise ValidationError({"task": f"A dataset's task is one of {offered}, not {task!r}."})
    kind = task_types.get(task)
    labels = [str(label).strip() for label in labels if str(label).strip()]
    if len(set(labels)) != len(labels):
        raise ValidationError({"labels": "The label schema lists a label twice."})
    for label in labels:
        if problem := kind.values.check_class_name(label):
            raise ValidationError(
                {"labels": f"The label schema cannot hold {label[:40]!r}: {problem}."}
            )
    try:
        with transaction.atomic():
            return Dataset.objects.create(
                project=project,
                name=name,
                modality=modality,
                task=task,
                labels=labels,
                description=description,
                created_by=by,
            )
    except IntegrityError:
        raise ValidationError(
            {"name": f"This project already has a dataset named {name!r}."}
        ) from None


@transaction.atomic
def dataset_delete(*, dataset: Dataset, by) -> None:
    """Delete a dataset and everything in it, the big tables first, in set-based statements."""
    with connection.cursor() as cur:
        # Review rows point at samples and label changes: they go before them.
        sessions = "SELECT id FROM review_reviewsession WHERE dataset_id = %s"
        cur.execute("DELETE FROM review_comment WHERE dataset_id = %s", [dataset.pk])
        cur.execute("DELETE FROM review_decision WHERE dataset_id = %s", [dataset.pk])
        for table in ("review_vote", "review_sessionitem", "review_participant"):
            cur.execute(f"DELETE FROM {table} WHERE session_id IN ({sessions})", [dataset.pk])  # noqa: S608
        cur.execute(
            "DELETE FROM datasets_prediction WHERE run_id IN (SELECT id FROM datasets_modelrun WHERE dataset_id = %s)",
            [dataset.pk],
        )
        for space_id in dataset.embedding_spaces.values_list("pk", flat=True):
            cur.execute(f"DROP INDEX IF EXISTS embedding_hnsw_space_{int(space_id)}")
        sort_indexes_drop(dataset=dataset)
        cur.execute(
            "DELETE FROM datasets_embedding WHERE space_id IN "
            "(SELECT id FROM datasets_embeddingspace WHERE dataset_id = %s)",
            [dataset.pk],
        )
        cur.execute(
            "DELETE FROM quality_samplescore WHERE run_id IN "
            "(SELECT id FROM quality_scoringrun WHERE dataset_id = %s)",
            [dataset.pk],
        )
        cur.execute("DELETE FROM datasets_labelevent WHERE dataset_id = %s", [dataset.pk])
        cur.execute(
            "DELETE FROM datasets_sampletag WHERE tag_id IN "
            "(SELECT id FROM datasets_tag WHERE dataset_id = %s)",
            [dataset.pk],
        )
        cur.execute("DELETE FROM datasets_sample WHERE dataset_id = %s", [dataset.pk])
        samples = cur.rowcount
    events.record(
        events.Event(
            "dataset.deleted",
            project=dataset.project,
            actor=by,
            audit=events.Audit(
                target=dataset.name,
                detail={"dataset_id": dataset.pk, "modality": dataset.modality, "samples": samples},
            ),
        )
    )
    for space in dataset.embedding_spaces.all():
        if default_storage.exists(text_model_path(space)):
            default_storage.delete(text_model_path(space))
    dataset.delete()
