"""Quality engine jobs: ids in, one service call."""

from celery import shared_task


@shared_task(name="loupe.quality.score_dataset", acks_late=True, time_limit=6 * 3600)
def score_dataset(run_id: int) -> None:
    from apps.quality.services import scoring_run_execute

    scoring_run_execute(run_id=run_id)


@shared_task(name="loupe.quality.recover_runs")
def recover_runs() -> None:
    from apps.quality.services import scoring_runs_recover

    scoring_runs_recover()
