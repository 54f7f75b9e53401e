"""The embedding map of a dataset: every sample a point of the run's 2D map, coloured by label
or a score; a lasso or box selection becomes a `within` query the sample table opens."""

from __future__ import annotations

import json

from csp.decorators import csp_update
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_safe

from apps.datasets.access import get_dataset_for_user
from apps.explorer import selectors
from apps.explorer.query import QueryError
from apps.explorer.selectors import MAP_NUMERIC_SCORES, exploration, map_scores, samples_matching
from apps.quality.models import RunStatus

# regl compiles its WebGL draw commands with Function(): the map page alone allows eval.
_MAP_CSP = {"script-src": ["'unsafe-eval'"]}

# The map's colour choices: (value, name). Numeric scores are drawn on a continuous scale.
MAP_COLORS = [
    ("label", "Label"),
    ("suggested", "Suggested label"),
    ("cluster", "Cluster"),
    ("split", "Split"),
    ("mislabel_score", "Mislabel score"),
    ("error_potential", "Error potential"),
    ("margin", "Margin"),
    ("outlier_score", "Outlier score"),
    ("knn_agreement", "kNN agreement"),
    ("coverage", "Coverage (production)"),
]


@login_required
@require_safe
@csp_update(_MAP_CSP)
def map_page(request, dataset_id: int):
    """The run's 2D map: every sample a point, coloured by label or a score; a lasso or box
    selection becomes a `within` query the sample table opens."""
    dataset = get_dataset_for_user(request.user, dataset_id)
    error = None
    try:
        found = exploration(dataset, request.GET)
    except QueryError as exc:
        error, found = str(exc), None
    run = found.run if found else None
    live = dataset.scoring_runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).first()
    query = found.query if found else {}
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "run": run,
        "live": live,
        "error": error,
        "query": json.dumps(query, separators=(",", ":")) if query else "",
        "colors": MAP_COLORS,
        # A link may open the map in a colouring: ?color=split shows production against training.
        "color": request.GET.get("color")
        if request.GET.get("color") in dict(MAP_COLORS)
        else "label",
    }
    return render(request, "explorer/map.html", context, status=400 if error else 200)


@login_required
@require_safe
@gzip_page
def map_points(request, dataset_id: int):
    """The map's points as JSON columns (see `selectors.map_points`); `?q=`, `?run=` and
    `?color=<numeric score>` as on the page, `?only=color` for just that score's column."""
    dataset = get_dataset_for_user(request.user, dataset_id)
    color = request.GET.get("color") or None
    only_color = request.GET.get("only") == "color"
    try:
        if color is not None and color not in MAP_NUMERIC_SCORES:
            raise QueryError("color", f"use one of {', '.join(MAP_NUMERIC_SCORES)}")
        if only_color and color is None:
            raise QueryError("only", "only=color needs a color")
        found = exploration(dataset, request.GET)
        if found.run is None:
            raise QueryError("run", "the dataset has no finished scoring run")
        samples = samples_matching(
            dataset, query=found.query, run=found.run, extra_scores=map_scores(color)
        )
        data = selectors.map_points(
            dataset,
            found.run,
            samples,
            limit=selectors.MAP_LIMIT,  # read here, so that a test can lower it
            color=color,
            only_color=only_color,
        )
    except QueryError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(data, json_dumps_params={"separators": (",", ":")})
