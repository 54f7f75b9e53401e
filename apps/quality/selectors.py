"""Reading scoring results: the run a page shows, and production monitoring's summaries."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from apps.datasets.models import Dataset, Split
from apps.quality.models import RunStatus, ScoringRun


def latest_done_run(dataset: Dataset) -> ScoringRun | None:
    """The newest finished run: what pages, exports and filters show by default."""
    return dataset.scoring_runs.filter(status=RunStatus.DONE).first()


# --- Production monitoring ------------------------------------------------------------------------


def production_summary(dataset: Dataset) -> dict:
    """Production samples of a dataset: how many, how many with a time seen, the latest."""
    from django.db.models import Max, Q

    from apps.datasets.models import Sample

    return Sample.objects.filter(dataset=dataset, split=Split.PRODUCTION).aggregate(
        count=Count("pk"),
        timed=Count("pk", filter=Q(observed_at__isnull=False)),
        last_observed_at=Max("observed_at"),
        last_added_at=Max("created_at"),
    )


def drift_checks_of_dataset(dataset: Dataset) -> QuerySet:
    """The dataset's drift checks, newest window first."""
    from apps.quality.models import DriftCheck

    return DriftCheck.objects.filter(dataset=dataset).order_by("-window_start")
