"""A scoring run's progress: its stage and heartbeat, written as it goes, and the cancellation
a worker notices there."""

from __future__ import annotations

from django.utils import timezone

from apps.quality.models import RunStatus, ScoringRun


def scoring_run_progress(*, run: ScoringRun, stage: str, progress: float) -> None:
    """Record the stage and beat the heart; a cancelled run stops here."""
    updated = ScoringRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        stage=stage, progress=progress, heartbeat_at=timezone.now()
    )
    if not updated:
        raise RunCancelled(run.pk)


class RunCancelled(Exception):
    """The run was cancelled (or taken over) while this worker carried it."""
