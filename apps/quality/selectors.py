"""Reading scoring results: the run a page shows, and the samples a flag points at."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.datasets.models import Dataset
from apps.quality.models import RunStatus, SampleScore, ScoringRun


def latest_done_run(dataset: Dataset) -> ScoringRun | None:
    """The newest finished run: what pages, exports and filters show by default."""
    return dataset.scoring_runs.filter(status=RunStatus.DONE).first()


def flagged_sample_ids(run: ScoringRun, flag: str) -> QuerySet:
    """Ids of the run's samples that carry `flag`, as a subquery."""
    return SampleScore.objects.filter(run=run, flags__contains=[flag]).values("sample_id")
