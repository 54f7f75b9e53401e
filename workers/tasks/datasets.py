"""Dataset jobs: ids in, one service call."""

from celery import shared_task


@shared_task(name="loupe.datasets.run_import", acks_late=True)
def run_import(job_id: int) -> None:
    from apps.datasets.services import import_job_run

    import_job_run(job_id=job_id)
