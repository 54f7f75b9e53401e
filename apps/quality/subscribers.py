"""Quality reacting to the events the apps below it record: a dataset whose data changed is
scored again when its project asks for that."""

from __future__ import annotations

from apps.core.events import Event
from apps.quality import services


def score_after_change(event: Event) -> None:
    """After an import or a committed version (once its transaction commits)."""
    services.scoring_after_change(dataset_id=event.payload["dataset"]["id"], by=event.actor)
