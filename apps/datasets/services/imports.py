"""Import jobs, their state in PostgreSQL: recorded, run (archives too), settled when orphaned."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core import events
from apps.core.tasks import task_enqueue
from apps.datasets.importing.archive import extract, inspect_archive
from apps.datasets.importing.loader import (
    ImportOptions,
    ImportRefused,
    import_model_run,
    import_samples,
)
from apps.datasets.importing.mapping import mapping_errors
from apps.datasets.importing.preview import header_of
from apps.datasets.importing.readers import (
    FORMATS,
    ColumnRefused,
    FileRefused,
    layout_from_header,
)
from apps.datasets.models import Dataset, ImportJob, JobStatus, Modality
from apps.datasets.selectors import media_path
from apps.datasets.services.model_runs import model_run_compute_metrics

IMPORT_FORMATS = (*FORMATS, "archive")


def _check_options(fmt: str, on_duplicate: str) -> None:
    if fmt not in IMPORT_FORMATS:
        raise ValidationError(
            {"format": f"Unknown format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}."}
        )
    if on_duplicate not in ("reject", "upsert"):
        raise ValidationError({"on_duplicate": "Use 'reject' or 'upsert'."})


def _check_mapping(columns, generate_ids: bool, fmt: str, kind: str) -> None:
    if columns is None and not generate_ids:
        return
    if kind != ImportJob.Kind.SAMPLES:
        field = "columns" if columns is not None else "generate_ids"
        raise ValidationError({field: "Column roles and generated ids are for imports of samples."})
    if errors := mapping_errors(columns or {}):
        raise ValidationError({"columns": [f"Column {c!r}: {m}." for c, m in errors]})


def _check_mapping_fits(
    dataset: Dataset, stream, fmt: str, columns: dict | None, generate_ids: bool
) -> None:
    """A mapping or generated ids are checked against the file's header before the import is
    queued: a column not in the file, two columns for one role, an id column besides generated
    ids are refused now, naming the column. (The table in an archive is checked when read.)"""
    if (columns is None and not generate_ids) or fmt == "archive":
        return
    field = "columns" if columns is not None else "generate_ids"
    try:
        header = header_of(stream, fmt)
    except FileRefused as exc:
        raise ValidationError({"file": str(exc)}) from None
    try:
        layout_from_header(
            header,
            tabular=dataset.modality == Modality.TABULAR,
            mapping=columns,
            generate_ids=generate_ids,
        )
    except ColumnRefused as exc:
        raise ValidationError({"columns": f"Column {exc.column!r}: {exc.message}."}) from None
    except FileRefused as exc:
        raise ValidationError({field: str(exc)}) from None


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
    columns: dict[str, str] | None = None,
    generate_ids: bool = False,
) -> ImportJob:
    """Record an import of an uploaded file (kept in media storage) or a local path; queue it.
    `columns` maps some of the file's columns to roles (the others go by their names);
    `generate_ids` makes the ids of a file that has none from each sample's content."""
    _check_options(fmt, on_duplicate)
    _check_mapping(columns, generate_ids, fmt, kind)
    limit = settings.LOUPE_IMPORT_MAX_BYTES
    size = upload.size if upload is not None else os.path.getsize(path)
    if size > limit:
        raise ValidationError(
            {
                "file": f"The file is {size:,} bytes; the limit is {limit:,} (LOUPE_IMPORT_MAX_BYTES)."
            }
        )
    if upload is not None:
        _check_mapping_fits(dataset, upload, fmt, columns, generate_ids)
    elif columns is not None or generate_ids:
        with open(path, "rb") as local:
            _check_mapping_fits(dataset, local, fmt, columns, generate_ids)
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
            **({"columns": columns} if columns else {}),
            **({"generate_ids": True} if generate_ids else {}),
            **(run or {}),
        },
        kind=kind,
    )
    if enqueue:
        task_enqueue("loupe.datasets.run_import", job.pk)
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
                    columns=job.options.get("columns"),
                    generate_ids=job.options.get("generate_ids", False),
                )
                if job.format == "archive":
                    result = _import_archive(job, stream, options, progress)
                else:
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
            if result.model_run_id:  # before the job says done: the metrics are part of the result
                model_run_compute_metrics(run_id=result.model_run_id)
            _finish(job, JobStatus.DONE, result={"dataset_id": job.dataset_id, **result.as_dict()})
            if job.kind != ImportJob.Kind.MODEL_RUN:
                _announce(job, result.as_dict())
            if result.embedding_space_id:
                task_enqueue("loupe.datasets.build_embedding_index", result.embedding_space_id)
            elif not job.dataset.embedding_spaces.exists():
                task_enqueue("loupe.datasets.compute_embeddings", job.dataset_id)
    job.refresh_from_db()
    return job


def _announce(job: ImportJob, result: dict) -> None:
    """A finished import of samples: the apps above react (a project may score it again)."""
    dataset = job.dataset
    events.record(
        events.Event(
            "dataset.imported",
            project=dataset.project,
            actor=job.created_by,
            payload={
                "dataset": {"id": dataset.pk, "name": dataset.name},
                "version": result.get("version"),
                "imported": result.get("imported"),
                "updated": result.get("updated"),
            },
        )
    )


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


def _import_archive(job: ImportJob, stream, options: ImportOptions, progress):
    """Inspect the archive, put its images in the dataset's media under a folder of this import,
    then import its table; a refused table takes the images back out.

    Every entry is extracted (its bytes counted against the limits) into a work folder first and
    moved into media storage only once whole: a refused or unreadable entry leaves no file
    behind in the dataset's media."""
    with tempfile.TemporaryDirectory(prefix="archive-", dir=_work_folder()) as work:
        if job.options.get("local"):
            path = job.file
        else:  # storage may be remote: archives need random access
            path = str(Path(work) / f"archive{Path(job.file_name).suffix}")
            with open(path, "wb") as local:
                shutil.copyfileobj(stream, local)
        contents = inspect_archive(
            path,
            max_bytes=settings.LOUPE_ARCHIVE_MAX_BYTES,
            max_entries=settings.LOUPE_ARCHIVE_MAX_ENTRIES,
            max_ratio=settings.LOUPE_ARCHIVE_MAX_RATIO,
        )
        options.images = frozenset(contents.images)
        options.image_prefix = f"import-{job.pk}/"
        stored = []
        try:
            for name, extracted in extract(path, contents, contents.images, work):
                with open(extracted, "rb") as f:
                    stored.append(
                        default_storage.save(
                            media_path(job.dataset, options.image_prefix + name), _Extracted(f)
                        )
                    )
            for _name, extracted in extract(path, contents, {contents.table}, work):
                with open(extracted, "rb") as table:
                    return import_samples(
                        dataset=job.dataset,
                        stream=table,
                        fmt=contents.table_format,
                        by=job.created_by,
                        options=options,
                        progress=progress,
                    )
            raise FileRefused(f"The archive entry {contents.table!r} cannot be read.")
        except BaseException:
            for name in stored:
                default_storage.delete(name)
            raise


class _Extracted(File):
    """An extracted entry: local storage moves the file into place instead of copying it."""

    def temporary_file_path(self) -> str:
        if self.file is None:
            raise ValueError("the extracted file is closed")
        return str(self.file.name)


def _work_folder() -> Path:
    """Where archives are unpacked: beside uploads in progress, swept with them when abandoned."""
    folder = Path(settings.LOUPE_UPLOAD_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


STALE_AFTER_MINUTES = 10


def import_jobs_recover(*, now=None) -> dict[str, int]:
    """Find imports no worker is carrying any more and settle them.

    A running import whose heartbeat stopped belonged to a worker that died: its transaction
    died with it, so nothing was written, and the job is failed saying so. A queued import
    nobody picked up (a broker that lost the message) is queued again; claiming is atomic, so a
    message that does turn up later changes nothing.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=STALE_AFTER_MINUTES)
    failed = ImportJob.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
        status=JobStatus.FAILED,
        finished_at=now,
        stage="",
        error="The worker running this import stopped; nothing was written. Import the file again.",
    )
    requeued = 0
    for job_id in ImportJob.objects.filter(
        status=JobStatus.QUEUED, created_at__lt=cutoff
    ).values_list("pk", flat=True):
        task_enqueue("loupe.datasets.run_import", job_id)
        requeued += 1
    return {"failed": failed, "requeued": requeued}
