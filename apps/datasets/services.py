"""Writes for datasets: creating them, and running imports as jobs whose state lives in PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.datasets.importing.loader import ImportOptions, ImportRefused, import_samples
from apps.datasets.importing.readers import FORMATS, FileRefused
from apps.datasets.models import Dataset, ImportJob, JobStatus, Modality


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
        },
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
            done = min(1.0, stream.tell() / size) if size else 0.0
            ImportJob.objects.filter(pk=job.pk).update(
                rows_done=rows, progress=done, heartbeat_at=timezone.now()
            )

        options = ImportOptions(
            on_duplicate=job.options.get("on_duplicate", "reject"),
            extend_labels=job.options.get("extend_labels", False),
            file_name=job.file_name,
        )
        try:
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
