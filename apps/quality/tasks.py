"""Quality engine jobs: ids in, one service call."""

from celery import shared_task

from apps.quality import services


@shared_task(name="loupe.quality.score_dataset", acks_late=True, time_limit=6 * 3600)
def score_dataset(run_id: int) -> None:
    """Plan a run (or resume its plan) and queue its chunks."""
    services.scoring_run_execute(run_id=run_id, inline=False)


@shared_task(
    name="loupe.quality.score_chunk", acks_late=True, time_limit=3600, soft_time_limit=3540
)
def score_chunk(chunk_id: int) -> None:
    services.scoring_chunk_execute(chunk_id=chunk_id)


@shared_task(name="loupe.quality.finish_run", acks_late=True, time_limit=6 * 3600)
def finish_run(run_id: int) -> None:
    services.scoring_run_finish(run_id=run_id)


@shared_task(name="loupe.quality.recover_runs")
def recover_runs() -> None:
    services.scoring_runs_recover()
