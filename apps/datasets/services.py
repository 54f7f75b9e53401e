"""Writes for datasets: creating them, and running imports as jobs whose state lives in PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from apps.datasets.importing.loader import (
    ImportOptions,
    ImportRefused,
    import_model_run,
    import_samples,
)
from apps.datasets.importing.readers import FORMATS, FileRefused, guess_format
from apps.datasets.models import (
    Dataset,
    DatasetVersion,
    ImportJob,
    JobStatus,
    LabelEvent,
    LabelSource,
    Modality,
    Sample,
    Upload,
)


@transaction.atomic
def dataset_create(
    *, project, name: str, modality: str = Modality.TEXT, labels=(), description: str = "", by
) -> Dataset:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A dataset needs a name."})
    if modality not in Modality.values:
        raise ValidationError(
            {"modality": f"Unknown modality {modality!r}; use one of {', '.join(Modality.values)}."}
        )
    labels = [str(label).strip() for label in labels if str(label).strip()]
    if len(set(labels)) != len(labels):
        raise ValidationError({"labels": "The label schema lists a label twice."})
    try:
        with transaction.atomic():
            return Dataset.objects.create(
                project=project,
                name=name,
                modality=modality,
                labels=labels,
                description=description,
                created_by=by,
            )
    except IntegrityError:
        raise ValidationError(
            {"name": f"This project already has a dataset named {name!r}."}
        ) from None


def _check_options(fmt: str, on_duplicate: str) -> None:
    if fmt not in FORMATS:
        raise ValidationError(
            {"format": f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}."}
        )
    if on_duplicate not in ("reject", "upsert"):
        raise ValidationError({"on_duplicate": "Use 'reject' or 'upsert'."})


@transaction.atomic
def import_job_create(
    *,
    dataset: Dataset,
    by,
    file_name: str,
    fmt: str,
    path: str = "",
    upload=None,
    on_duplicate: str = "reject",
    extend_labels: bool = False,
    enqueue: bool = True,
    kind: str = ImportJob.Kind.SAMPLES,
    run: dict | None = None,
) -> ImportJob:
    """Record an import of an uploaded file (kept in media storage) or a local path; queue it."""
    _check_options(fmt, on_duplicate)
    limit = settings.LOUPE_IMPORT_MAX_BYTES
    size = upload.size if upload is not None else os.path.getsize(path)
    if size > limit:
        raise ValidationError(
            {
                "file": f"The file is {size:,} bytes; the limit is {limit:,} (LOUPE_IMPORT_MAX_BYTES)."
            }
        )
    if upload is not None:
        path = default_storage.save(
            f"imports/{dataset.project_id}/{dataset.pk}/{Path(file_name).name}", upload
        )
    job = ImportJob.objects.create(
        project=dataset.project,
        dataset=dataset,
        created_by=by,
        file=path,
        file_name=Path(file_name).name,
        format=fmt,
        options={
            "on_duplicate": on_duplicate,
            "extend_labels": extend_labels,
            "local": upload is None,
            **(run or {}),
        },
        kind=kind,
    )
    if enqueue:
        from workers.tasks.datasets import run_import

        transaction.on_commit(lambda: run_import.delay(job.pk))
    return job


def _open(job: ImportJob):
    if job.options.get("local"):
        return open(job.file, "rb")  # noqa: SIM115 - closed by the caller's with
    return default_storage.open(job.file, "rb")


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Run a queued import. Claims it first, so a redelivered task does not run it twice."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, stage="reading"
    )
    job = ImportJob.objects.select_related("dataset", "created_by").filter(pk=job_id).first()
    if not claimed or job is None:
        return job
    with _open(job) as stream:
        size = _size(stream)

        def progress(rows: int) -> None:
            try:
                done = min(1.0, stream.tell() / size) if size else 0.0
            except (OSError, ValueError):  # a stream that cannot tell
                done = 0.0
            ImportJob.objects.filter(pk=job.pk).update(
                rows_done=rows, progress=done, heartbeat_at=timezone.now()
            )

        try:
            if job.kind == ImportJob.Kind.MODEL_RUN:
                result = import_model_run(
                    dataset=job.dataset,
                    stream=stream,
                    fmt=job.format,
                    by=job.created_by,
                    name=job.options.get("name") or job.file_name,
                    metrics=job.options.get("metrics") or {},
                    embedding_space=job.options.get("embedding_space", ""),
                    progress=progress,
                )
            else:
                options = ImportOptions(
                    on_duplicate=job.options.get("on_duplicate", "reject"),
                    extend_labels=job.options.get("extend_labels", False),
                    file_name=job.file_name,
                )
                result = import_samples(
                    dataset=job.dataset,
                    stream=stream,
                    fmt=job.format,
                    by=job.created_by,
                    options=options,
                    progress=progress,
                )
        except ImportRefused as refused:
            _finish(
                job,
                JobStatus.FAILED,
                problems=refused.problems,
                problem_count=refused.count,
                error=str(refused),
            )
        except FileRefused as refused:
            _finish(job, JobStatus.FAILED, error=str(refused))
        except Exception as exc:
            _finish(job, JobStatus.FAILED, error=f"Import failed: {exc.__class__.__name__}: {exc}")
            raise
        else:
            _finish(job, JobStatus.DONE, result={"dataset_id": job.dataset_id, **result.as_dict()})
    job.refresh_from_db()
    return job


def _size(stream) -> int:
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        return getattr(stream, "size", 0) or 0


def _finish(job: ImportJob, status: str, **fields) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        status=status,
        finished_at=timezone.now(),
        stage="",
        progress=F("progress") if status != JobStatus.DONE else 1.0,
        **fields,
    )


@transaction.atomic
def sample_relabel(
    *, sample: Sample, label: str | None, by, reason: str = "", source: str = LabelSource.MANUAL
) -> LabelEvent:
    """Put a label change in the dataset's draft (one draft change per sample; the newest wins)."""
    dataset = sample.dataset
    if label is not None and label not in dataset.labels:
        raise ValidationError(
            {"label": f"Unknown label {label!r}; the schema has {', '.join(dataset.labels)}."}
        )
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
    return DatasetVersion.objects.create(
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


@transaction.atomic
def dataset_delete(*, dataset: Dataset) -> None:
    """Delete a dataset and everything in it, the big tables first, in set-based statements."""
    with connection.cursor() as cur:
        cur.execute(
            "DELETE FROM datasets_prediction WHERE run_id IN (SELECT id FROM datasets_modelrun WHERE dataset_id = %s)",
            [dataset.pk],
        )
        for space_id in dataset.embedding_spaces.values_list("pk", flat=True):
            cur.execute(f"DROP INDEX IF EXISTS embedding_hnsw_space_{int(space_id)}")
        cur.execute(
            "DELETE FROM datasets_embedding WHERE space_id IN "
            "(SELECT id FROM datasets_embeddingspace WHERE dataset_id = %s)",
            [dataset.pk],
        )
        cur.execute("DELETE FROM datasets_labelevent WHERE dataset_id = %s", [dataset.pk])
        cur.execute("DELETE FROM datasets_sample WHERE dataset_id = %s", [dataset.pk])
    dataset.delete()


def _upload_path(upload: Upload) -> Path:
    folder = Path(settings.LOUPE_UPLOAD_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{upload.pk}.part"


@transaction.atomic
def upload_create(*, dataset: Dataset, by, file_name: str, size: int) -> Upload:
    name = Path(file_name or "").name
    if not name:
        raise ValidationError(
            {"file_name": "Give the file's name (its extension tells the format)."}
        )
    if size <= 0:
        raise ValidationError({"size": "The file is empty."})
    if size > settings.LOUPE_IMPORT_MAX_BYTES:
        raise ValidationError(
            {
                "size": f"The file is {size:,} bytes; the limit is {settings.LOUPE_IMPORT_MAX_BYTES:,} (LOUPE_IMPORT_MAX_BYTES)."
            }
        )
    upload = Upload.objects.create(dataset=dataset, created_by=by, file_name=name, size=size)
    _upload_path(upload).write_bytes(b"")
    return upload


class UploadOffsetMismatch(ValidationError):
    """A chunk that does not start where the upload stands (the client resumes from `received`)."""


@transaction.atomic
def upload_append(*, upload: Upload, start: int, data: bytes) -> Upload:
    """Append a chunk at `start`. Sending a chunk again that was already stored changes nothing."""
    upload = Upload.objects.select_for_update().get(pk=upload.pk)
    if upload.completed_at is not None:
        raise ValidationError({"upload": "This upload is complete."})
    end = start + len(data)
    if end <= upload.received and start >= 0:
        return upload  # a retried chunk that had arrived
    if start != upload.received:
        raise UploadOffsetMismatch(
            {"start": f"Expected a chunk starting at byte {upload.received}, got {start}."}
        )
    if end > upload.size:
        raise ValidationError(
            {"size": f"The chunk ends at byte {end}, past the declared size {upload.size}."}
        )
    with _upload_path(upload).open("r+b") as f:
        f.seek(start)
        f.write(data)
        f.truncate()
    upload.received = end
    upload.save(update_fields=["received"])
    return upload


@transaction.atomic
def upload_complete(
    *,
    upload: Upload,
    fmt: str = "",
    on_duplicate: str = "reject",
    extend_labels: bool = False,
    kind: str = ImportJob.Kind.SAMPLES,
    run: dict | None = None,
) -> ImportJob:
    """The upload is whole: put it in media storage and queue its import."""
    upload = Upload.objects.select_for_update().select_related("dataset").get(pk=upload.pk)
    if upload.completed_at is not None:
        raise ValidationError({"upload": "This upload is complete."})
    if upload.received != upload.size:
        raise ValidationError({"upload": f"Received {upload.received:,} of {upload.size:,} bytes."})
    try:
        fmt = fmt or guess_format(upload.file_name)
    except FileRefused as exc:
        raise ValidationError({"format": str(exc)}) from None
    part = _upload_path(upload)
    with part.open("rb") as f:
        job = import_job_create(
            dataset=upload.dataset,
            by=upload.created_by,
            file_name=upload.file_name,
            fmt=fmt,
            upload=File(f, name=upload.file_name),
            on_duplicate=on_duplicate,
            extend_labels=extend_labels,
            kind=kind,
            run=run,
        )
    part.unlink()
    upload.completed_at = timezone.now()
    upload.save(update_fields=["completed_at"])
    return job


def model_run_options(*, name: str, metrics=None, embedding_space: str = "") -> dict:
    """Check what a model-run import needs besides its file: a name, and metrics as a JSON object."""
    import json

    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the model run."})
    if isinstance(metrics, str):
        try:
            metrics = json.loads(metrics) if metrics.strip() else {}
        except ValueError:
            raise ValidationError(
                {"metrics": 'Metrics must be a JSON object, e.g. {"test": {"accuracy": 0.9}}.'}
            ) from None
    metrics = metrics or {}
    if not isinstance(metrics, dict):
        raise ValidationError(
            {"metrics": 'Metrics must be a JSON object, e.g. {"test": {"accuracy": 0.9}}.'}
        )
    return {"name": name, "metrics": metrics, "embedding_space": (embedding_space or "").strip()}
