"""Web pages of the quality engine: the methods page (how every score of a scoring run is made)
and the embedding map of a dataset."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from functools import cache
from statistics import NormalDist
from typing import Any

from csp.decorators import csp_update
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_safe

from apps.datasets.access import get_dataset_for_user
from apps.quality import selectors
from apps.quality.models import RunStatus
from apps.quality.selectors import MAP_NUMERIC_SCORES, map_scores

# The methods page, section by section: (anchor, title). Other pages link to a signal's method
# as `{% url 'quality:methods' %}#<anchor>`, so an anchor, once published, stays.
METHOD_SECTIONS: list[tuple[str, str]] = [
    ("embeddings", "Embeddings"),
    ("out-of-sample-probabilities", "Out-of-sample probabilities"),
    ("likely-mislabeled", "Likely mislabelled and suggested label"),
    ("error-potential", "Error potential (hardness)"),
    ("class-overlap", "On the boundary, class overlap and confusion"),
    ("outlier", "Outliers"),
    ("near-duplicates", "Near duplicates, leakage and conflicting labels"),
    ("redundancy", "Redundancy"),
    ("clusters", "Clusters"),
    ("weak-slices", "Weak metadata slices"),
    ("map", "2D map"),
    ("drift", "Production drift and coverage"),
    ("monitoring", "Production monitoring and drift alerts"),
    ("label-noise", "Label noise per split and class balance"),
    ("active-learning", "Active-learning selection"),
]


def _default(function, name: str) -> Any:
    return inspect.signature(function).parameters[name].default


# Defaults the methods page shows for apps above quality, by key of the template's `p`: each app
# adds its own from its AppConfig.ready (production monitoring adds "monitor"), so that quality
# need not import them.
METHOD_PARAMETER_SOURCES: dict[str, Callable[[], dict[str, Any]]] = {}


@cache
def method_parameters() -> dict[str, Any]:
    """The defaults the engine and the scoring pipeline actually run with, read from the code.

    Imported here rather than at module level: the kernels pull in scikit-learn, which the
    rest of the web process does not need; the result is the same for every request.
    """
    from apps.quality import pipeline
    from workers.engine import embeddings, labels, neighbours, slices

    outlier_k = _default(neighbours.outlier_scores, "k")
    coverage = _default(neighbours.drift, "coverage_percentile")
    noise_confidence = _default(labels.label_noise_estimate, "confidence")
    return {
        # Embeddings
        # Keys as template-friendly names: "tfidf-svd" -> "tfidf_svd".
        "embedding_methods": {
            key.replace("-", "_"): text for key, text in embeddings.EMBEDDING_METHODS.items()
        },
        "tfidf_dim": _default(embeddings.text_tfidf_svd, "dim"),
        "tfidf_min_df_from": embeddings._MIN_DF_FROM,
        "max_categories": _default(embeddings.tabular_scaled, "max_categories"),
        "thumb_size": _default(embeddings.image_pixels_pca, "size"),
        "image_dim": _default(embeddings.image_pixels_pca, "dim"),
        # Out-of-sample probabilities
        "n_folds": _default(labels.out_of_sample_probs, "n_folds"),
        "oof_knn_k": labels.KNN_K,
        "pca_dim": labels.PCA_DIM,
        "narrow_dim": labels.NARROW_DIM,
        "exact_knn_max": labels.EXACT_KNN_MAX,
        "lr_max_train": labels.LR_MAX_TRAIN,
        "lr_c": f"{labels.LR_C:g}",
        "knn_weight_wide": labels._knn_weight(labels.NARROW_DIM),
        "knn_weight_narrowest": labels._knn_weight(0),
        # Label errors and the class boundary
        "prune_methods": labels.PRUNE_METHODS,
        "cleaning_rounds": labels.CLEANING_ROUNDS,
        "mix_weights": "{" + ", ".join(f"{w:g}" for w in labels.MIX_WEIGHTS) + "}",
        "calibration_rows": labels.CALIBRATION_ROWS,
        "boundary_margin": pipeline.BOUNDARY_MARGIN,
        "overlap_top": _default(labels.class_overlap, "top"),
        # Neighbour kernels
        "outlier_k": outlier_k,
        "outlier_percentile": pipeline.OUTLIER_PERCENTILE,
        "outlier_percent": round(100 * pipeline.OUTLIER_PERCENTILE),
        "exact_below": _default(neighbours.knn, "exact_below"),
        "chunk_rows": settings.LOUPE_SCORING_CHUNK_ROWS,
        "hnsw_m": neighbours._HNSW_M,
        "hnsw_ef_construction": neighbours._HNSW_EF_CONSTRUCTION,
        "hnsw_ef_search": neighbours._HNSW_EF_SEARCH,
        "duplicate_threshold": _default(neighbours.near_duplicates, "threshold"),
        "duplicate_k": _default(neighbours.near_duplicates, "k"),
        "redundant_below": pipeline.REDUNDANT_BELOW,
        "cluster_cap": _default(neighbours.default_cluster_count, "cap"),
        "cluster_examples": [(n, neighbours.default_cluster_count(n)) for n in (1_000, 10_000)],
        "top_terms": _default(neighbours.cluster_summary, "top_n"),
        "cluster_alpha": _default(neighbours.cluster_summary, "alpha"),
        # Weak slices
        "slice_min_size": _default(slices.weak_slices, "min_size"),
        "slice_alpha": _default(slices.weak_slices, "alpha"),
        "slice_max_distinct": slices._MAX_DISTINCT_NUMERIC,
        "slice_bins": slices._NUMERIC_BINS,
        # Drift
        "drift_k": _default(neighbours.drift, "k"),
        "coverage_percentile": coverage,
        "coverage_percent": round(100 * coverage),
        "drift_max_per_side": _default(neighbours.drift, "max_per_side"),
        # Sections of apps above quality, which it may not import (see METHOD_PARAMETER_SOURCES)
        **{key: source() for key, source in METHOD_PARAMETER_SOURCES.items()},
        # Label noise
        "noise_confidence_percent": round(100 * noise_confidence),
        "noise_z": f"{NormalDist().inv_cdf(0.5 + noise_confidence / 2.0):.2f}",
        # Active learning
        "al_budget": pipeline.ACTIVE_LEARNING_BUDGET,
        "al_uncertainty": _default(neighbours.active_learning_pick, "uncertainty"),
        "al_pool_factor": _default(neighbours.active_learning_pick, "pool_factor"),
    }


@login_required
@require_safe
def methods(request):
    """Each quality signal: what it means, how it is computed, its defaults and its paper.

    The same page for every signed-in user: it documents the engine and shows no project data.
    """
    context = {"sections": METHOD_SECTIONS, "p": method_parameters()}
    return render(request, "quality/methods.html", context)


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
    from apps.datasets.query import QueryError
    from apps.datasets.selectors import exploration

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
    return render(request, "quality/map.html", context, status=400 if error else 200)


@login_required
@require_safe
@gzip_page
def map_points(request, dataset_id: int):
    """The map's points as JSON columns (see `selectors.map_points`); `?q=`, `?run=` and
    `?color=<numeric score>` as on the page, `?only=color` for just that score's column."""
    from apps.datasets.query import QueryError
    from apps.datasets.selectors import exploration, samples_matching

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
