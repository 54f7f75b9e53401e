"""Reading production monitoring: a dataset's production samples in sum, and its drift checks."""

from __future__ import annotations

from django.db.models import Count, Max, Q, QuerySet

from apps.datasets.models import Dataset, Sample, Split
from apps.monitoring.models import DriftCheck


def production_summary(dataset: Dataset) -> dict:
    """Production samples of a dataset: how many, how many with a time seen, the latest."""
    return Sample.objects.filter(dataset=dataset, split=Split.PRODUCTION).aggregate(
        count=Count("pk"),
        timed=Count("pk", filter=Q(observed_at__isnull=False)),
        last_observed_at=Max("observed_at"),
        last_added_at=Max("created_at"),
    )


def drift_checks_of_dataset(dataset: Dataset) -> QuerySet:
    """The dataset's drift checks, newest window first."""
    return DriftCheck.objects.filter(dataset=dataset).order_by("-window_start")
