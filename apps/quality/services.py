"""Starting scoring runs, carrying them through their stages, and settling stalled ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.datasets.models import Dataset, ModelRun
from apps.datasets.selectors import latest_version
from apps.quality.models import RunStatus, ScoringRun

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
        from workers.tasks.quality import score_dataset

        transaction.on_commit(lambda: score_dataset.delay(run.pk))
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


def scoring_run_progress(*, run: ScoringRun, stage: str, progress: float) -> None:
    """Record the stage and beat the heart; a cancelled run stops here."""
    updated = ScoringRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        stage=stage, progress=progress, heartbeat_at=timezone.now()
    )
    if not updated:
        raise RunCancelled(run.pk)


class RunCancelled(Exception):
    """The run was cancelled (or taken over) while this worker carried it."""


def scoring_run_cancel(*, run: ScoringRun) -> bool:
    return bool(
        ScoringRun.objects.filter(
            pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
        ).update(status=RunStatus.CANCELLED, finished_at=timezone.now(), stage="")
    )


def scoring_run_execute(*, run_id: int, engine: Callable | None = None) -> ScoringRun | None:
    """Carry a run from claim to done or failed. Scores are written whole at the end, replacing
    any a previous attempt left, so running twice gives the same rows."""
    from apps.quality.pipeline import score_run

    run = scoring_run_claim(run_id=run_id)
    if run is None:
        return ScoringRun.objects.filter(pk=run_id).first()
    started = time.monotonic()
    try:
        (engine or score_run)(run)
    except RunCancelled:
        pass
    except Exception as exc:
        ScoringRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            stage="",
            error=f"{exc.__class__.__name__}: {exc}",
        )
        raise
    else:
        ScoringRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.DONE, finished_at=timezone.now(), stage="", progress=1.0
        )
    run.refresh_from_db()
    run.timings = {**run.timings, "total_seconds": round(time.monotonic() - started, 2)}
    run.save(update_fields=["timings"])
    return run


def scoring_runs_recover(*, now=None) -> dict[str, int]:
    """Stalled runs are resumed (queued again) until MAX_ATTEMPTS, then failed with the reason."""
    from workers.tasks.quality import score_dataset

    now = now or timezone.now()
    stalled = ScoringRun.objects.filter(
        status=RunStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    )
    failed = stalled.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=RunStatus.FAILED,
        finished_at=now,
        stage="",
        error=f"The worker stopped {MAX_ATTEMPTS} times while scoring; giving up.",
    )
    resumed = 0
    lost = Q(status=RunStatus.QUEUED, created_at__lt=now - STALE_AFTER)
    for run_id in ScoringRun.objects.filter(lost | Q(pk__in=stalled.values("pk"))).values_list(
        "pk", flat=True
    ):
        score_dataset.delay(run_id)
        resumed += 1
    return {"failed": failed, "resumed": resumed}


def scoring_run_delete_scores(*, run: ScoringRun) -> None:
    with connection.cursor() as cur:
        cur.execute("DELETE FROM quality_samplescore WHERE run_id = %s", [run.pk])
