"""Quality engine jobs: ids in, one service call."""

from celery import shared_task


@shared_task(name="loupe.quality.score_dataset", acks_late=True, time_limit=6 * 3600)
def score_dataset(run_id: int) -> None:
    """Plan a run (or resume its plan) and queue its chunks."""
    from apps.quality.services import scoring_run_execute

    scoring_run_execute(run_id=run_id, inline=False)


@shared_task(
    name="loupe.quality.score_chunk", acks_late=True, time_limit=3600, soft_time_limit=3540
)
def score_chunk(chunk_id: int) -> None:
    from apps.quality.services import scoring_chunk_execute

    scoring_chunk_execute(chunk_id=chunk_id)


@shared_task(name="loupe.quality.finish_run", acks_late=True, time_limit=6 * 3600)
def finish_run(run_id: int) -> None:
    from apps.quality.services import scoring_run_finish

    scoring_run_finish(run_id=run_id)


@shared_task(name="loupe.quality.recover_runs")
def recover_runs() -> None:
    from apps.quality.services import scoring_runs_recover

    scoring_runs_recover()


@shared_task(
    name="loupe.quality.check_drift", acks_late=True, time_limit=3600, soft_time_limit=3540
)
def check_drift(dataset_id: int | None = None) -> None:
    """Check the complete time windows of one dataset's production samples, or (on the beat
    schedule, without an id) of every dataset that has them."""
    from apps.quality.monitoring import drift_checks_sweep, drift_windows_check

    if dataset_id is None:
        drift_checks_sweep()
    else:
        drift_windows_check(dataset_id=dataset_id)
