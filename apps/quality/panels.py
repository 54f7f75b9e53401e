"""Quality's panel of the dataset page: the newest scoring run, live while it runs."""

from __future__ import annotations

from apps.core.panels import panel_register
from apps.quality.models import RunStatus
from apps.quality.services import scoring_policy_of


def scoring_context(request, context: dict) -> dict:
    run = context["dataset"].scoring_runs.first()
    return {
        "scoring": run,
        "scoring_live": run is not None and run.status in (RunStatus.QUEUED, RunStatus.RUNNING),
        "scoring_policy": scoring_policy_of(context["dataset"].project),
    }


def register() -> None:
    panel_register("dataset.aside", template="quality/scoring.html", context=scoring_context)
