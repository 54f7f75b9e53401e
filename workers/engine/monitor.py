"""Production monitoring: one time window of production samples checked against training.

Three signals, each from `neighbours`: the dataset-level two-sample test (a cross-validated
domain classifier's AUC with its Mann-Whitney p-value), the share of production samples out of
training coverage (k-th neighbour distance above training's 95th percentile) and the change of
each training cluster's share (production rows go to the nearest training-cluster centroid).
When training is labelled, two more from `label_shift`: the change of the class mix and the
share of a new kind of data (rows that belong to no training class).

A signal crosses when its value passes the project's threshold *and* the departure is
significant at the project's p-value threshold. The second condition matters for small windows
only: 30 samples spread over 20 clusters move a cluster's share by 3.3 points each, so an
unshifted window of 30 would cross a 10-point threshold in about one window of three (see
docs/monitoring.md); with it, each signal's false-alarm rate stays near the p-value threshold
whatever the window size. For windows of a few hundred samples the thresholds alone decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.engine import label_shift, neighbours

# SciPy is imported by the functions that use it: the web process imports this module for its
# signal names, and should not pay for loading it.

# Signals, in the order the product shows them.
TEST, COVERAGE, CLUSTER_SHIFT = "test", "coverage", "cluster_shift"
LABEL_SHIFT, NEW_KIND = "label_shift", "new_kind"
SIGNALS = (TEST, COVERAGE, CLUSTER_SHIFT, LABEL_SHIFT, NEW_KIND)
# A cluster table row of the report keeps this many example production rows.
EXAMPLES_PER_CLUSTER = 50
# Monitoring clusters: few enough that a reweighted region moves one cluster's share visibly
# (a true component split over five small clusters moves each by a fifth), enough to localise.
MAX_CLUSTERS = 20
MIN_SAMPLES = 10  # below this no window is tested at all


def cluster_count(n: int) -> int:
    """Training clusters for monitoring: the scoring run's rule of thumb, capped at MAX_CLUSTERS."""
    return neighbours.default_cluster_count(n, cap=MAX_CLUSTERS)


@dataclass
class Reference:
    """What every window of one check shares: training's unit rows, clusters, centroids and
    k-th neighbour distances (the expensive part, computed once)."""

    vectors: np.ndarray
    clusters: np.ndarray
    cluster_ids: np.ndarray
    centroids: np.ndarray
    index: neighbours.NeighbourIndex
    kth: np.ndarray
    k: int


def reference(
    train_vectors: np.ndarray, train_clusters: np.ndarray | Sequence[int], *, k: int = 10
) -> Reference:
    vectors = neighbours._unit_rows(train_vectors)
    labels = np.asarray(train_clusters, dtype=np.int64)
    if len(labels) != len(vectors):
        raise ValueError("one training cluster per training row, please")
    ids = np.unique(labels)
    centroids = np.stack([vectors[labels == c].mean(axis=0) for c in ids]) if len(ids) else None
    centroids = neighbours._unit_rows(centroids) if centroids is not None else vectors[:0]
    if len(ids):
        # Training rows join their clusters by the rule production rows will (the nearest
        # centroid by cosine), or the two sides' shares would differ by the rule alone.
        labels = ids[np.argmax(vectors @ centroids.T, axis=1)]
    index = neighbours.NeighbourIndex(vectors)
    k = max(1, min(k, len(vectors) - 1))
    _, sims = index.neighbours(np.arange(len(vectors)), k)
    return Reference(
        vectors=vectors,
        clusters=labels,
        cluster_ids=ids,
        centroids=centroids,
        index=index,
        kth=neighbours.kth_distance(sims),
        k=k,
    )


def assign_clusters(ref: Reference, production_vectors: np.ndarray) -> np.ndarray:
    """Each production row's nearest training-cluster centroid (by cosine)."""
    rows = neighbours._unit_rows(production_vectors)
    if not len(rows) or not len(ref.centroids):
        return np.zeros(len(rows), dtype=np.int64)
    return np.asarray(ref.cluster_ids[np.argmax(rows @ ref.centroids.T, axis=1)])


def _fisher(a: int, n_a: int, b: int, n_b: int) -> float:
    """Two-sided Fisher exact p-value that shares a/n_a and b/n_b are equal."""
    from scipy import stats

    return float(stats.fisher_exact([[a, n_a - a], [b, n_b - b]])[1])


def window_check(
    train_vectors: np.ndarray | None,
    train_clusters: np.ndarray | Sequence[int] | None,
    production_vectors: np.ndarray,
    *,
    p_value_threshold: float = 0.01,
    coverage_threshold: float = 0.15,
    cluster_shift_threshold: float = 0.10,
    coverage_percentile: float = 0.95,
    k: int = 10,
    max_per_side: int = 5_000,
    seed: int = 0,
    ref: Reference | None = None,
    production_keys: Sequence[Any] | None = None,
    classes: label_shift.ClassReference | None = None,
    production_probs: np.ndarray | None = None,
    label_shift_threshold: float = 0.15,
    new_kind_threshold: float = 0.10,
) -> dict[str, Any]:
    """Check one window of production rows against training.

    Give training as `train_vectors` and `train_clusters`, or as a `reference(...)` (`ref`) when
    several windows are checked against the same training set. `production_keys` (ids of the
    production rows) fill each cluster row's `examples`.

    Returns auc, p_value, share_out_of_coverage, max_cluster_shift (largest absolute change of
    a cluster's share), clusters (every cluster: training and production share, change, Fisher
    p-value, whether it is significant after Bonferroni over the clusters, biggest change
    first), crossed (the signals past their thresholds, each with value and threshold) and
    alert (any crossed). With `classes` (a `label_shift.class_reference` of labelled training)
    also label_shift and new_kind (see `label_shift.check`; None without), scored with
    `production_probs` when a model run gives them.
    """
    from scipy import stats

    if ref is None:
        if train_vectors is None or train_clusters is None:
            raise ValueError("give the training vectors and clusters, or a reference")
        ref = reference(train_vectors, train_clusters, k=k)
    prod = neighbours._unit_rows(production_vectors)
    n_p, n_t = len(prod), len(ref.vectors)
    if n_p < MIN_SAMPLES or n_t < MIN_SAMPLES:
        raise ValueError(
            f"a window needs at least {MIN_SAMPLES} production and training rows "
            f"(got {n_p} and {n_t})"
        )
    _, prod_sims = ref.index.query(prod, ref.k)
    report = neighbours.drift(
        ref.vectors,
        prod,
        seed=seed,
        k=ref.k,
        coverage_percentile=coverage_percentile,
        max_per_side=max_per_side,
        kth_distances=(ref.kth, neighbours.kth_distance(prod_sims)),
    )

    # Out of coverage: by construction about (1 - percentile) of an unshifted window.
    expected = 1.0 - coverage_percentile
    n_out = int(np.count_nonzero(report["out_of_coverage"]))
    coverage_p = float(stats.binomtest(n_out, n_p, expected, alternative="greater").pvalue)

    # Cluster shift: production rows join the nearest training centroid.
    prod_clusters = assign_clusters(ref, prod)
    rows = neighbours.cluster_shift(ref.clusters, prod_clusters)
    t_counts = dict(zip(*np.unique(ref.clusters, return_counts=True), strict=True))
    p_counts = dict(zip(*np.unique(prod_clusters, return_counts=True), strict=True))
    m = max(1, len(rows))
    keys = None if production_keys is None else list(production_keys)
    for row in rows:
        c = row["cluster"]
        p = _fisher(int(p_counts.get(c, 0)), n_p, int(t_counts.get(c, 0)), n_t)
        row["p_value"] = min(1.0, p * m)  # Bonferroni over the clusters
        row["significant"] = row["p_value"] < p_value_threshold
        row["n_production"] = int(p_counts.get(c, 0))
        if keys is not None:
            members = np.flatnonzero(prod_clusters == c)[:EXAMPLES_PER_CLUSTER]
            row["examples"] = [keys[i] for i in members.tolist()]
    max_shift = max((abs(r["change"]) for r in rows), default=0.0)
    # The threshold is a share for clusters as coarse as the check's own (MAX_CLUSTERS); a scoring
    # run's finer clusters split the same move of a region between them, so it shrinks in step.
    cluster_shift_threshold *= min(1.0, MAX_CLUSTERS / m)
    counted = [r for r in rows if abs(r["change"]) > cluster_shift_threshold and r["significant"]]

    crossed = []
    if report["p_value"] < p_value_threshold:
        crossed.append({"signal": TEST, "value": report["p_value"], "threshold": p_value_threshold})
    if report["share_out_of_coverage"] > coverage_threshold and coverage_p < p_value_threshold:
        crossed.append(
            {
                "signal": COVERAGE,
                "value": report["share_out_of_coverage"],
                "threshold": coverage_threshold,
            }
        )
    if counted:
        worst = counted[0]  # rows are sorted biggest change first
        crossed.append(
            {
                "signal": CLUSTER_SHIFT,
                "value": abs(worst["change"]),
                "threshold": cluster_shift_threshold,
                "cluster": worst["cluster"],
                "clusters": len(counted),
            }
        )
    by_class = None
    if classes is not None:
        by_class = label_shift.check(
            classes,
            prod,
            production_probs=production_probs,
            production_keys=production_keys,
            p_value_threshold=p_value_threshold,
            label_shift_threshold=label_shift_threshold,
            new_kind_threshold=new_kind_threshold,
            seed=seed,
        )
        crossed.extend(by_class["crossed"])
    return {
        "n_production": n_p,
        "n_train": n_t,
        "auc": report["auc"],
        "p_value": report["p_value"],
        "share_out_of_coverage": report["share_out_of_coverage"],
        "coverage_p_value": coverage_p,
        "n_out_of_coverage": n_out,
        "out_of_coverage": report["out_of_coverage"],
        "max_cluster_shift": float(max_shift),
        "clusters": rows,
        "production_clusters": prod_clusters,
        "label_shift": by_class["label_shift"] if by_class else None,
        "new_kind": by_class["new_kind"] if by_class else None,
        "crossed": crossed,
        "alert": bool(crossed),
    }


def cluster_terms(
    cluster_ids: np.ndarray | Sequence[int], texts: Sequence[str], *, top_n: int = 5
) -> dict[int, list[str]]:
    """The words that set each cluster's texts apart (c-TF-IDF), to name a cluster."""
    ids = np.asarray(cluster_ids)
    order = np.unique(ids).tolist()
    if not order:
        return {}
    return neighbours._top_terms_per_cluster(ids, list(texts), order, top_n)
