"""Rules reacting to the events the other apps record: a finished scoring run queues its
dataset's after-scoring rules."""

from __future__ import annotations

from apps.core.events import Event
from apps.rules import services


def after_scoring(event: Event) -> None:
    """Runs once the scoring run's transaction commits (the rules read the run's scores)."""
    services.rules_after_scoring_enqueue(scoring_run_id=event.payload["run"])
