"""Production monitoring jobs: ids in, one service call."""

from celery import shared_task

from apps.monitoring.services import drift


# Named before monitoring had an app of its own: the beat schedule and queued messages use it.
@shared_task(
    name="loupe.quality.check_drift", acks_late=True, time_limit=3600, soft_time_limit=3540
)
def check_drift(dataset_id: int | None = None) -> None:
    """Check the complete time windows of one dataset's production samples, or (on the beat
    schedule, without an id) of every dataset that has them."""
    if dataset_id is None:
        drift.drift_checks_sweep()
    else:
        drift.drift_windows_check(dataset_id=dataset_id)
