"""Pages of the explorer, one module each: the table, the sample page, health and the map."""

from __future__ import annotations

from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.quality.selectors import stale_scores


def stale_context(request, dataset, run) -> dict:
    """The banner of a page showing `run`'s scores when newer versions exist (templates/explorer/
    _stale.html): what changed, and a button to score the newest version for those who may."""
    stale = stale_scores(dataset, run)
    can_score = stale is not None and get_membership_for_user(
        request.user, pk=dataset.project_id
    ).can(Cap.EDIT_DATA)
    return {"stale": stale, "can_score": can_score}
