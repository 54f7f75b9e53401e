"""Starting scoring runs, carrying them through their stages, and settling stalled ones."""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone

from apps.core import events
from apps.core.tasks import task_enqueue
from apps.datasets.models import Dataset, ModelRun
from apps.datasets.selectors import latest_version
from apps.quality import pipeline
from apps.quality.models import RunStatus, ScoringChunk, ScoringPolicy, ScoringRun
from apps.quality.progress import RunCancelled, scoring_run_progress

STALE_AFTER = timedelta(minutes=10)
MAX_ATTEMPTS = 3


@transaction.atomic
def scoring_run_start(
    *, dataset: Dataset, by, model_run: ModelRun | None = None, enqueue: bool = True
) -> ScoringRun:
    """Queue a scoring run of the dataset's newest version (with a model run's probabilities, if given)."""
    version = latest_version(dataset)
    if version is None:
        raise ValidationError(
            {"dataset": "The dataset has no version to score yet; import samples first."}
        )
    if model_run is not None and model_run.dataset_id != dataset.pk:
        raise ValidationError({"model_run": "That model run belongs to another dataset."})
    if model_run is None:
        model_run = dataset.model_runs.order_by("-created_at", "-id").first()
    run = ScoringRun.objects.create(
        dataset=dataset, version=version, model_run=model_run, created_by=by
    )
    if enqueue:
        task_enqueue("loupe.quality.score_dataset", run.pk)
    return run


def scoring_run_claim(*, run_id: int) -> ScoringRun | None:
    """Take a queued run, or a running one whose worker stopped beating; None if it isn't ours."""
    now = timezone.now()
    claimable = Q(status=RunStatus.QUEUED) | Q(
        status=RunStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    )
    with transaction.atomic():
        run = (
            ScoringRun.objects.select_for_update(skip_locked=True)
            .filter(claimable, pk=run_id)
            .first()
        )
        if run is None:
            return None
        run.status, run.heartbeat_at, run.error = RunStatus.RUNNING, now, ""
        run.started_at = run.started_at or now
        run.attempts += 1
        run.save(update_fields=["status", "heartbeat_at", "error", "started_at", "attempts"])
    return run


def scoring_run_cancel(*, run: ScoringRun) -> bool:
    cancelled = ScoringRun.objects.filter(
        pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).update(status=RunStatus.CANCELLED, finished_at=timezone.now(), stage="")
    if cancelled:
        pipeline.discard_artefacts(run)
    return bool(cancelled)


def scoring_run_execute(*, run_id: int, inline: bool = True) -> ScoringRun | None:
    """Claim a run and plan its chunks (or pick up the plan an earlier attempt left). Inline,
    compute every chunk and finish in this process; otherwise queue the chunks for any worker,
    the last of which queues the finish. Results are written whole at the end, replacing any
    an earlier attempt left, so running twice gives the same rows."""
    run = scoring_run_claim(run_id=run_id)
    if run is None:
        return ScoringRun.objects.filter(pk=run_id).first()
    try:
        done = list(
            run.chunks.filter(status=ScoringChunk.Status.DONE).values_list("stage", "index")
        )
        # No plan yet, or its results were discarded (a finished run scored again): plan anew.
        if not run.params.get("stages") or not pipeline.results_intact(run, done):
            started = time.monotonic()
            scoring_run_progress(run=run, stage="planning", progress=0.02)
            run.params = {key: v for key, v in run.params.items() if key not in ("stages", "graph")}
            stages = pipeline.plan(run)
            with transaction.atomic():
                ScoringChunk.objects.filter(run=run).delete()
                ScoringChunk.objects.bulk_create(
                    ScoringChunk(run=run, stage=stage, index=i)
                    for stage, count in stages.items()
                    for i in range(count)
                )
                run.params = {**run.params, "stages": stages}
                run.timings = {"planning": round(time.monotonic() - started, 2)}
                run.save(update_fields=["params", "timings"])
        pending = list(
            run.chunks.exclude(status=ScoringChunk.Status.DONE).values_list("pk", flat=True)
        )
        scoring_run_progress(run=run, stage=CHUNKS_STAGE, progress=_chunk_progress(run))
        if not inline:
            for chunk_id in pending:
                task_enqueue("loupe.quality.score_chunk", chunk_id)
            if not pending and _claim_finish(run):
                task_enqueue("loupe.quality.finish_run", run.pk)
            return run
        for chunk_id in pending:
            scoring_chunk_execute(chunk_id=chunk_id, inline=True)
        if not _claim_finish(run):
            run.refresh_from_db()
            return run
        return scoring_run_finish(run_id=run.pk)
    except RunCancelled:
        run.refresh_from_db()
        return run
    except Exception as exc:
        _fail(run.pk, f"{exc.__class__.__name__}: {exc}")
        raise


CHUNKS_STAGE = "scoring chunks"
FINISH_STAGE = "finishing"


def _chunk_progress(run: ScoringRun) -> float:
    counts = run.chunks.aggregate(
        total=Count("pk"), done=Count("pk", filter=Q(status=ScoringChunk.Status.DONE))
    )
    return 0.05 + 0.8 * (counts["done"] / counts["total"] if counts["total"] else 1.0)


def _fail(run_id: int, error: str) -> int:
    """Fail a running run with the reason, and drop its intermediate results."""
    failed = ScoringRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED, finished_at=timezone.now(), stage="", error=error
    )
    if failed:
        pipeline.discard_artefacts(ScoringRun.objects.get(pk=run_id))
    return failed


def scoring_chunk_claim(*, chunk_id: int) -> ScoringChunk | None:
    """Take a queued chunk of a running run, or one whose worker stopped beating."""
    now = timezone.now()
    with transaction.atomic():
        chunk = (
            # Lock the chunk only: a worker claiming a sibling chunk holds nothing we need.
            ScoringChunk.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("run")
            .filter(
                Q(status=ScoringChunk.Status.QUEUED)
                | Q(status=ScoringChunk.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER),
                pk=chunk_id,
                run__status=RunStatus.RUNNING,
            )
            .first()
        )
        if chunk is None:
            return None
        chunk.status, chunk.heartbeat_at = ScoringChunk.Status.RUNNING, now
        chunk.attempts += 1
        chunk.worker = f"{socket.gethostname()}:{os.getpid()}"
        chunk.save(update_fields=["status", "heartbeat_at", "attempts", "worker"])
    ScoringRun.objects.filter(pk=chunk.run_id).update(heartbeat_at=now)
    return chunk


def scoring_chunk_execute(*, chunk_id: int, inline: bool = False) -> None:
    """Compute one chunk; the worker that completes a run's last chunk queues its finish."""
    chunk = scoring_chunk_claim(chunk_id=chunk_id)
    if chunk is None:
        return
    run = chunk.run
    started = time.monotonic()
    try:
        pipeline.compute_chunk(run, chunk.stage, chunk.index)
    except Exception as exc:
        _fail(run.pk, f"{exc.__class__.__name__}: {exc}")
        raise
    ScoringChunk.objects.filter(pk=chunk.pk).update(
        status=ScoringChunk.Status.DONE, seconds=round(time.monotonic() - started, 2)
    )
    try:
        scoring_run_progress(run=run, stage=CHUNKS_STAGE, progress=_chunk_progress(run))
    except RunCancelled:
        return
    if inline or run.chunks.exclude(status=ScoringChunk.Status.DONE).exists():
        return
    if _claim_finish(run):
        task_enqueue("loupe.quality.finish_run", run.pk)


def _claim_finish(run: ScoringRun) -> bool:
    """Exactly one caller moves a run whose chunks are all done on to finishing."""
    return bool(
        ScoringRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING)
        .exclude(stage=FINISH_STAGE, heartbeat_at__gte=timezone.now() - STALE_AFTER)
        .exclude(chunks__status__in=[ScoringChunk.Status.QUEUED, ScoringChunk.Status.RUNNING])
        .update(stage=FINISH_STAGE, heartbeat_at=timezone.now())
    )


def scoring_run_finish(*, run_id: int) -> ScoringRun | None:
    """Put the chunks' results together, compute the rest and write the scores."""
    run = ScoringRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).first()
    if run is None:
        return ScoringRun.objects.filter(pk=run_id).first()
    try:
        pipeline.finish(run, run.params.get("stages", {}))
    except RunCancelled:
        run.refresh_from_db()
        return run
    except Exception as exc:
        _fail(run.pk, f"{exc.__class__.__name__}: {exc}")
        raise
    finished = timezone.now()
    run.refresh_from_db(fields=["timings"])
    by_stage = run.chunks.order_by().values("stage").annotate(seconds=Sum("seconds"))
    timings = {
        **run.timings,
        **{
            f"chunks: {row['stage']} (worker seconds)": round(row["seconds"] or 0, 2)
            for row in by_stage
        },
        "workers": run.chunks.aggregate(n=Count("worker", distinct=True))["n"],
        "total_seconds": (
            round((finished - run.started_at).total_seconds(), 2) if run.started_at else None
        ),
    }
    # Done and its timings in one write: whoever sees the run done sees its timings too.
    done = ScoringRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.DONE, finished_at=finished, stage="", progress=1.0, timings=timings
    )
    run.refresh_from_db()
    if done:
        events.record(
            events.Event(
                "scoring.finished",
                project=run.dataset.project,
                payload={
                    "run": run.pk,
                    "dataset": {"id": run.dataset_id, "name": run.dataset.name},
                    "version": run.version,
                    "url": reverse("datasets:health", args=[run.dataset_id]),
                },
            )
        )
    pipeline.discard_artefacts(run)
    pipeline.forget()
    return run


def scoring_runs_recover(*, now=None) -> dict[str, int]:
    """Stalled runs are resumed (queued again, keeping the chunks already done) and stalled
    chunks queued again, until MAX_ATTEMPTS; then the run fails with the reason."""
    now = now or timezone.now()
    cutoff = now - STALE_AFTER
    stalled = ScoringRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff)
    failed = 0
    for run_id in stalled.filter(attempts__gte=MAX_ATTEMPTS).values_list("pk", flat=True):
        failed += _fail(
            run_id, f"The worker stopped {MAX_ATTEMPTS} times while scoring; giving up."
        )
    stalled_chunks = ScoringChunk.objects.filter(
        run__status=RunStatus.RUNNING,
        status=ScoringChunk.Status.RUNNING,
        heartbeat_at__lt=cutoff,
    )
    for chunk in stalled_chunks.filter(attempts__gte=MAX_ATTEMPTS):
        failed += _fail(
            chunk.run_id, f"The worker stopped {MAX_ATTEMPTS} times on {chunk}; giving up."
        )
    chunks = 0
    for chunk_id in stalled_chunks.filter(attempts__lt=MAX_ATTEMPTS).values_list("pk", flat=True):
        task_enqueue("loupe.quality.score_chunk", chunk_id)
        chunks += 1
    resumed = 0
    lost = Q(status=RunStatus.QUEUED, created_at__lt=cutoff)
    for run_id in ScoringRun.objects.filter(lost | Q(pk__in=stalled.values("pk"))).values_list(
        "pk", flat=True
    ):
        task_enqueue("loupe.quality.score_dataset", run_id)
        resumed += 1
    return {"failed": failed, "resumed": resumed, "chunks_resumed": chunks}


def scoring_run_delete_scores(*, run: ScoringRun) -> None:
    with connection.cursor() as cur:
        cur.execute("DELETE FROM quality_samplescore WHERE run_id = %s", [run.pk])


def scoring_policy_of(project) -> ScoringPolicy:
    """The project's scoring policy (the default one, unsaved, when it never chose)."""
    return ScoringPolicy.objects.filter(project=project).first() or ScoringPolicy(project=project)


@transaction.atomic
def scoring_policy_set(*, project, after_changes: bool, by) -> ScoringPolicy:
    policy, _ = ScoringPolicy.objects.update_or_create(
        project=project, defaults={"after_changes": bool(after_changes)}
    )
    events.record(
        events.Event(
            "scoring_policy.changed",
            project=project,
            actor=by,
            audit=events.Audit(target="scoring", detail={"after_changes": policy.after_changes}),
        )
    )
    return policy


def scoring_after_change(*, dataset_id: int, by) -> ScoringRun | None:
    """Score the dataset's newest version when its project asks for that after every change,
    unless a run of that version is already queued or running; the run started, if any."""
    dataset = Dataset.objects.select_related("project").filter(pk=dataset_id).first()
    if dataset is None or not scoring_policy_of(dataset.project).after_changes:
        return None
    version = latest_version(dataset)
    if (
        version is None
        or dataset.scoring_runs.filter(
            version=version, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)
        ).exists()
    ):
        return None
    return scoring_run_start(dataset=dataset, by=by)
