"""Quality's panel of the dataset page: the newest scoring run, live while it runs."""

from __future__ import annotations

from apps.core.panels import panel_register
from apps.quality.models import RunStatus


def scoring_context(request, context: dict) -> dict:
    run = context["dataset"].scoring_runs.first()
    return {
        "scoring": run,
        "scoring_live": run is not None and run.status in (RunStatus.QUEUED, RunStatus.RUNNING),
    }


def register() -> None:
    panel_register("dataset.aside", template="quality/scoring.html", context=scoring_context)
