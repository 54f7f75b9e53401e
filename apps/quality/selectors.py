"""Reading scoring results: the run a page shows, and production monitoring's summaries."""

from __future__ import annotations

from apps.datasets.models import Dataset
from apps.quality.models import RunStatus, ScoringRun


def latest_done_run(dataset: Dataset) -> ScoringRun | None:
    """The newest finished run: what pages, exports and filters show by default."""
    return dataset.scoring_runs.filter(status=RunStatus.DONE).first()
