"""Fetch a scoring run of a dataset the user may see (the dataset's access check comes first)."""

from __future__ import annotations

from django.http import Http404

from apps.quality.models import ScoringRun


def get_scoring_run_of_dataset(dataset, run_id: int, *, status: str | None = None) -> ScoringRun:
    runs = dataset.scoring_runs.filter(pk=run_id)
    run = (runs.filter(status=status) if status else runs).first()
    if run is None:
        raise Http404("No such scoring run.")
    return run
