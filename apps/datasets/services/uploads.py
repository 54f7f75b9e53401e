"""Resumable uploads: a file sent in chunks and completed into an import; leftovers purged."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from apps.datasets.importing.readers import FileRefused, guess_format
from apps.datasets.models import Dataset, ImportJob, JobStatus, Upload
from apps.datasets.services.imports import import_job_create


def _upload_path(upload: Upload) -> Path:
    upload.path.parent.mkdir(parents=True, exist_ok=True)
    return upload.path


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


def upload_stage(*, dataset: Dataset, by, file) -> Upload:
    """Keep a file sent whole (the web form's) as a complete upload of the dataset, for its
    preview and then its import; abandoned, it is purged like any upload never completed."""
    upload = upload_create(dataset=dataset, by=by, file_name=file.name, size=file.size)
    with _upload_path(upload).open("wb") as part:
        for chunk in file.chunks():
            part.write(chunk)
    Upload.objects.filter(pk=upload.pk).update(received=upload.size)
    upload.received = upload.size
    return upload


def upload_discard(*, upload: Upload) -> None:
    """Forget an upload never completed, and its bytes."""
    if upload.completed_at is None:
        _upload_path(upload).unlink(missing_ok=True)
        Upload.objects.filter(pk=upload.pk, completed_at=None).delete()


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
    columns: dict[str, str] | None = None,
    generate_ids: bool = False,
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
            columns=columns,
            generate_ids=generate_ids,
        )
    part.unlink()
    upload.completed_at = timezone.now()
    upload.save(update_fields=["completed_at"])
    return job


def uploads_purge(*, now=None) -> dict[str, int]:
    """Delete what imports left behind past LOUPE_UPLOAD_EXPIRE_HOURS: uploads never completed
    (their rows and chunks), chunk files and unpacking folders no upload or import owns any
    more, and the stored files of refused imports. Safe to run at any time and twice."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.LOUPE_UPLOAD_EXPIRE_HOURS)
    counts = {"uploads": 0, "files": 0, "refused_imports": 0}
    for upload in Upload.objects.filter(completed_at=None, created_at__lt=cutoff):
        _upload_path(upload).unlink(missing_ok=True)
        Upload.objects.filter(pk=upload.pk, completed_at=None).delete()
        counts["uploads"] += 1
    # Chunk files of deleted datasets' uploads, and folders a worker that died was unpacking in.
    live = {
        f"{pk}.part" for pk in Upload.objects.filter(completed_at=None).values_list("pk", flat=True)
    }
    folder = Path(settings.LOUPE_UPLOAD_DIR)
    for entry in folder.iterdir() if folder.is_dir() else ():
        try:
            if entry.name in live or entry.stat().st_mtime >= cutoff.timestamp():
                continue
        except FileNotFoundError:  # finished with by another process meanwhile
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        counts["files"] += 1
    refused = ImportJob.objects.filter(
        status=JobStatus.FAILED, finished_at__lt=cutoff, options__local=False
    ).exclude(file="")
    for job_id, name in refused.values_list("pk", "file"):
        if default_storage.exists(name):
            default_storage.delete(name)
        ImportJob.objects.filter(pk=job_id).update(file="")
        counts["refused_imports"] += 1
    return counts
