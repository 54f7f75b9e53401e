"""Writes for datasets: creating them, and running imports as jobs whose state lives in PostgreSQL."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.urls import reverse
from django.utils import timezone

from apps.config.parsers import json_loads
from apps.core import events
from apps.core.tasks import task_enqueue
from apps.datasets.importing.archive import extract, inspect_archive
from apps.datasets.importing.loader import (
    ImportOptions,
    ImportRefused,
    binary_copy_data,
    copy_binary,
    import_model_run,
    import_samples,
    raw_connection,
)
from apps.datasets.importing.readers import FORMATS, FileRefused, guess_format
from apps.datasets.models import (
    Dataset,
    DatasetVersion,
    EmbeddingSpace,
    ImportJob,
    JobStatus,
    LabelEvent,
    LabelSource,
    Modality,
    ModelRun,
    Prediction,
    Sample,
    Upload,
)
from apps.datasets.selectors import media_path, text_model_path
from workers.engine import embeddings as kernels
from workers.engine.metrics import split_metrics


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


IMPORT_FORMATS = (*FORMATS, "archive")


def _scalar(cursor: Any) -> Any:
    """The first column of a statement's one row (a SELECT of a value, an INSERT … RETURNING)."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row[0]


def _check_options(fmt: str, on_duplicate: str) -> None:
    if fmt not in IMPORT_FORMATS:
        raise ValidationError(
            {"format": f"Unknown format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}."}
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
            if result.embedding_space_id:
                task_enqueue("loupe.datasets.build_embedding_index", result.embedding_space_id)
            elif not job.dataset.embedding_spaces.exists():
                task_enqueue("loupe.datasets.compute_embeddings", job.dataset_id)
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
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the model run."})
    if isinstance(metrics, str):
        try:
            metrics = json_loads(metrics) if metrics.strip() else {}
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


INDEX_BUILD_LOCK = 0x4C6F75706501  # advisory lock key: one embedding index build at a time


def embedding_index_build(*, space_id: int) -> float | None:
    """Build the space's HNSW cosine index (once); returns the seconds it took, None if it exists.

    pgvector indexes one dimension per index, so each space has a partial index on
    (vector::vector(d)) WHERE space_id = …; queries must use that same expression.
    """
    space = EmbeddingSpace.objects.filter(pk=space_id).first()
    if space is None or space.index_built_at is not None:
        return None
    started = time.monotonic()
    with raw_connection() as conn:
        conn.autocommit = True  # CREATE INDEX CONCURRENTLY cannot run in a transaction
        conn.execute(f"SET maintenance_work_mem = '{int(settings.LOUPE_INDEX_MEMORY_MB)}MB'")
        conn.execute(f"SET max_parallel_maintenance_workers = {int(settings.LOUPE_INDEX_WORKERS)}")
        # Two concurrent builds on one table wait for each other's snapshot and deadlock: one
        # build at a time (a session lock, released when this connection closes at the latest).
        # Polled, not waited for: a statement waiting on the lock holds a snapshot the running
        # build would wait for in turn.
        while not _scalar(conn.execute("SELECT pg_try_advisory_lock(%s)", [INDEX_BUILD_LOCK])):
            time.sleep(1)
        try:
            # A build that was interrupted leaves an invalid index; IF NOT EXISTS would keep it.
            invalid = conn.execute(
                "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s AND NOT i.indisvalid",
                [space.index_name],
            ).fetchone()
            if invalid:
                conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {space.index_name}")
            conn.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {space.index_name} ON datasets_embedding "
                f"USING hnsw ((vector::vector({int(space.dimension)})) vector_cosine_ops) "
                f"WHERE space_id = {int(space.pk)}"
            )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [INDEX_BUILD_LOCK])
    seconds = round(time.monotonic() - started, 2)
    EmbeddingSpace.objects.filter(pk=space.pk).update(
        index_built_at=timezone.now(), index_build_seconds=seconds
    )
    return seconds


def embeddings_compute(*, dataset_id: int, method: str | None = None) -> EmbeddingSpace | None:
    """Compute an embedding space for a dataset that came without one (see workers.engine.embeddings).

    Returns the new space, or None when the dataset already has a space made with `method`.
    """

    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        return None
    method = method or kernels.choose_method(dataset.modality)
    if dataset.embedding_spaces.filter(name=method).exists():
        return None
    rows = list(dataset.samples.order_by("id").values_list("id", "text", "fields", "image"))
    if not rows:
        return None
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    text_model = None
    if method == "minilm":
        vectors = kernels.text_minilm([r[1] for r in rows])
    elif method == "tfidf-svd":
        vectors, text_model = kernels.text_tfidf_svd([r[1] for r in rows], keep=True)
    elif method == "scaled-features":
        vectors = kernels.tabular_scaled([r[2] or {} for r in rows])
    elif method == "pixels-pca":
        vectors = kernels.image_pixels_pca(
            default_storage.open(media_path(dataset, r[3])).read() for r in rows
        )
    else:
        raise ValueError(f"Unknown embedding method {method!r}")
    del rows
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) > 1 and not np.ptp(vectors, axis=0).any():
        # Every row the same (no feature columns, say): a space that tells no sample apart
        # would only make every neighbour signal noise.
        raise ValueError(
            f"the {method} embeddings are identical for every sample: nothing to compute them from"
        )
    with raw_connection() as conn, conn.transaction():
        space_id = _scalar(
            conn.execute(
                """INSERT INTO datasets_embeddingspace (dataset_id, name, dimension, method, created_at)
               VALUES (%s, %s, %s, %s, now()) RETURNING id""",
                [dataset.pk, method, vectors.shape[1], method],
            )
        )
        for start in range(0, len(ids), 50_000):
            chunk = slice(start, start + 50_000)
            n = len(ids[chunk])
            data = binary_copy_data(
                [("int8", np.full(n, space_id)), ("int8", ids[chunk]), ("vector", vectors[chunk])]
            )
            copy_binary(conn, "datasets_embedding", ["space_id", "sample_id", "vector"], data)
    space = EmbeddingSpace.objects.get(pk=space_id)
    if text_model is not None:  # kept so that free text can be searched in this space
        default_storage.save(text_model_path(space), ContentFile(text_model.to_bytes()))
    return space


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


def model_run_compute_metrics(*, run_id: int) -> dict | None:
    """Accuracy and macro F1 per split of the run's final probabilities against the current
    labels, kept in the run's metrics under "computed" beside what the user logged."""

    run = ModelRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    index = {label: i for i, label in enumerate(run.classes)}
    # The final probabilities: epoch 0 when logged, else the last epoch's.
    predictions = Prediction.objects.filter(run=run)
    epoch = (
        0 if predictions.filter(epoch=0).exists() else predictions.aggregate(e=Max("epoch"))["e"]
    )
    rows = list(
        Prediction.objects.filter(run=run, epoch=epoch, sample__active=True).values_list(
            "probs", "sample__label", "sample__split"
        )
    )
    if not rows:
        return None
    probs = np.array([np.asarray(r[0], dtype=np.float32) for r in rows])
    labels = np.array([index.get(r[1], -1) if r[1] is not None else -1 for r in rows])
    splits = np.array([r[2] for r in rows])
    computed = split_metrics(probs, labels, splits)
    ModelRun.objects.filter(pk=run.pk).update(metrics={**run.metrics, "computed": computed})
    return computed


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


# --- Queues of samples (a review session's items, a batch's) ---------------------------------


def queue_append(*, items, dataset_id: int, samples, limit: int, make) -> list[Sample]:
    """Append samples of the dataset to the end of an ordered queue (a review session's items,
    a batch's), skipping those already in it, up to `limit` items in all. `items` is the
    queue's related manager; `make(sample, position)` builds one item. Returns those added."""
    present = set(items.values_list("sample_id", flat=True))
    fresh = [s for s in samples if s.dataset_id == dataset_id and s.pk not in present]
    fresh = fresh[: max(0, limit - len(present))]
    start = (items.aggregate(m=Max("position"))["m"] or -1) + 1
    items.model.objects.bulk_create(make(s, start + i) for i, s in enumerate(fresh))
    return fresh
