"""Web pages of the quality engine: the methods page (how every score of a scoring run is made)
and the scoring panel of the dataset page."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache
from statistics import NormalDist
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.datasets.access import get_dataset_for_user
from apps.datasets.views import dataset_caps
from apps.projects.capabilities import Cap
from apps.quality import pipeline
from apps.quality.panels import scoring_context
from apps.quality.services import scoring_policy_set, scoring_run_start
from workers.engine import duplicates, embeddings, labels, neighbours, outliers, slices

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
    """The defaults the engine and the scoring pipeline actually run with, read from the code
    (the same for every request, so computed once)."""
    outlier_k = pipeline.NEIGHBOUR_K
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
        "given_weights": "{" + ", ".join(f"{w:g}" for w in labels.GIVEN_WEIGHTS) + "}",
        "calibration_rows": labels.CALIBRATION_ROWS,
        "id_argmax_ratio": f"{labels.ID_ARGMAX_RATIO:g}",
        "id_joint_ratio": f"{labels.ID_JOINT_RATIO:g}",
        "boundary_margin": pipeline.BOUNDARY_MARGIN,
        "overlap_top": _default(labels.class_overlap, "top"),
        # Neighbour kernels
        "outlier_k": outlier_k,
        "outlier_fdr": outliers.FDR,
        "outlier_fdr_percent": round(100 * outliers.FDR),
        "outlier_min_threshold": outliers.MIN_THRESHOLD,
        "outlier_min_class": outliers.MIN_CLASS_SIZE,
        "outlier_common_words": outliers.COMMON_WORDS,
        "outlier_foreign_below_percent": round(100 * outliers.FOREIGN_BELOW),
        "outlier_min_words": outliers.MIN_WORDS,
        "outlier_min_group": outliers.MIN_GROUP,
        "exact_below": _default(neighbours.knn, "exact_below"),
        "chunk_rows": settings.LOUPE_SCORING_CHUNK_ROWS,
        "hnsw_m": neighbours._HNSW_M,
        "hnsw_ef_construction": neighbours._HNSW_EF_CONSTRUCTION,
        "hnsw_ef_search": neighbours._HNSW_EF_SEARCH,
        "dup_z": f"{duplicates.EMBEDDING_Z:g}",
        "dup_low": duplicates.EMBEDDING_LOW,
        "dup_high": duplicates.EMBEDDING_HIGH,
        "dup_shingle": duplicates.SHINGLE,
        "dup_jaccard": duplicates.TEXT_JACCARD,
        "dup_text_high": duplicates.TEXT_HIGH,
        "dup_num_perm": duplicates.NUM_PERM,
        "dup_band_rows": duplicates.BAND_ROWS,
        "dup_min_chars": duplicates.TEXT_MIN_CHARS,
        "dup_distance": duplicates.IMAGE_DISTANCE,
        "dup_crop_percent": round(100 * duplicates.CROP_SHARE),
        "duplicate_k": pipeline.NEIGHBOUR_K,
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


@login_required
@require_POST
def scoring_policy(request, dataset_id: int):
    """Whether the dataset's project scores its datasets again by itself after each change."""
    dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
    scoring_policy_set(
        project=dataset.project,
        after_changes=request.POST.get("after_changes") == "on",
        by=request.user,
    )
    if not request.htmx:
        return redirect("datasets:detail", dataset_id=dataset.pk)
    context = {"dataset": dataset, **dataset_caps(request, dataset)}
    context.update(scoring_context(request, context))
    return render(request, "quality/scoring.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def scoring(request, dataset_id: int):
    """The scoring panel: start a run (POST), or its live state while it runs (polled)."""
    dataset = get_dataset_for_user(request.user, dataset_id)
    refused = None
    if request.method == "POST":
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        try:
            scoring_run_start(dataset=dataset, by=request.user)
        except ValidationError as exc:
            refused = " ".join(exc.messages)
        if not request.htmx:
            if refused:
                messages.error(request, refused)
            return redirect("datasets:detail", dataset_id=dataset.pk)
    # In place (htmx), the panel itself says why nothing started.
    context = {"dataset": dataset, "refused": refused, **dataset_caps(request, dataset)}
    context.update(scoring_context(request, context))
    return render(request, "quality/scoring.html", context)
