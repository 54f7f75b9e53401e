"""The neighbour kernels on constructed data whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from workers.engine import neighbours
from workers.engine.neighbours import (
    active_learning_pick,
    cluster_shift,
    cluster_summary,
    clusters,
    default_cluster_count,
    drift,
    duplicate_findings,
    knn,
    knn_label_agreement,
    project_2d,
)
from workers.engine.slices import MISSING, weak_slices


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _blobs(rng: np.random.Generator, n_per: int, centres: int, d: int, spread: float = 0.05):
    centre_vectors = _unit(rng, centres, d) * 3
    x = np.vstack([c + spread * rng.standard_normal((n_per, d)) for c in centre_vectors])
    return x.astype(np.float32), np.repeat(np.arange(centres), n_per)


def test_exact_knn_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    x = _unit(rng, 300, 16)
    idx, sims = knn(x, k=5)
    full = x @ x.T
    np.fill_diagonal(full, -np.inf)
    expected = np.argsort(-full, axis=1)[:, :5]
    assert np.array_equal(idx, expected)
    assert np.allclose(sims, np.take_along_axis(full, expected, axis=1), atol=1e-5)
    assert not (idx == np.arange(300)[:, None]).any()


def test_knn_with_queries_keeps_self_matches() -> None:
    rng = np.random.default_rng(2)
    x = _unit(rng, 50, 8)
    idx, sims = knn(x, k=1, queries=x[:10])
    assert np.array_equal(idx[:, 0], np.arange(10))
    assert np.allclose(sims[:, 0], 1.0, atol=1e-5)


@pytest.mark.skipif(neighbours.faiss is None, reason="faiss-cpu not installed")
def test_hnsw_path_agrees_with_exact_and_drops_self() -> None:
    rng = np.random.default_rng(3)
    x, _ = _blobs(rng, 200, 5, 32, spread=0.3)
    exact_idx, _ = knn(x, k=10)
    ann_idx, ann_sims = knn(x, k=10, exact_below=0)
    assert not (ann_idx == np.arange(len(x))[:, None]).any()
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ann_idx, exact_idx, strict=True)])
    assert recall > 0.95
    assert np.all(np.diff(ann_sims, axis=1) <= 1e-5)  # nearest first
    q_idx, _ = knn(x, k=3, queries=x[:5], exact_below=0)
    assert np.array_equal(q_idx[:, 0], np.arange(5))


def test_knn_degenerate_inputs() -> None:
    idx, sims = knn(np.ones((1, 4)), k=10)
    assert idx.shape == (1, 0) and sims.shape == (1, 0)
    idx, _ = knn(np.ones((3, 4)), k=10)  # k >= n: every other row, never itself
    assert idx.shape == (3, 2)
    assert sorted(idx[0].tolist()) == [1, 2]
    idx, sims = knn(np.zeros((4, 3)), k=2)  # zero vectors: no NaNs
    assert np.isfinite(sims).all()


def test_leakage_and_conflicting_labels_are_named() -> None:
    splits = ["train"] * 200
    labels = ["cat"] * 200
    splits[20] = "test"
    labels[50] = "dog"
    findings = duplicate_findings([[3, 10, 20], [40, 50]], splits, labels)
    assert findings["n_groups"] == 2
    assert findings["leakage_groups"] == [0]
    assert findings["groups"][0]["leakage"] == [("train", "test")]
    assert findings["n_leaked_samples"] == 1
    assert findings["conflicting_label_groups"] == [1]
    assert findings["groups"][1]["labels"] == ["cat", "dog"]


def test_duplicates_within_test_only_are_not_leakage() -> None:
    findings = duplicate_findings([[0, 1]], ["test", "validation"], ["a", "a"])
    assert findings["leakage_groups"] == [] and findings["conflicting_label_groups"] == []


def test_knn_label_agreement_and_majority() -> None:
    labels = np.array(["cat", "dog", "dog", "dog", "cat"])
    indices = np.array([[1, 2, 3, 4], [2, 3, 0, 4], [1, 3, 0, -1], [0, 4, 1, 2], [0, 1, 2, 3]])
    agreement, majority, count = knn_label_agreement(indices, labels)
    assert np.allclose(agreement, [0.25, 0.5, 2 / 3, 0.5, 0.25])
    assert majority.tolist() == ["dog", "dog", "dog", "cat", "dog"]
    assert count.tolist() == [3, 2, 2, 2, 3]
    agreement, majority, count = knn_label_agreement(np.empty((2, 0), int), labels[:2])
    assert agreement.tolist() == [0, 0] and count.tolist() == [0, 0]


def test_knn_label_agreement_on_blobs() -> None:
    rng = np.random.default_rng(7)
    x, y = _blobs(rng, 50, 3, 16)
    y = y.copy()
    y[0] = 2  # a planted mislabel in blob 0
    idx, _ = knn(x, k=10)
    agreement, majority, count = knn_label_agreement(idx, y)
    assert agreement[0] == 0.0 and majority[0] == 0 and count[0] == 10
    assert np.median(agreement) == 1.0


def test_shifted_production_is_detected() -> None:
    rng = np.random.default_rng(8)
    train = rng.standard_normal((600, 16))
    prod = rng.standard_normal((400, 16))
    prod[:, 0] += 1.5
    result = drift(train, prod, seed=0)
    assert result["auc"] > 0.8
    assert result["p_value"] < 1e-6
    assert result["coverage_percentile"].shape == (400,)


def test_identical_distributions_give_chance_auc() -> None:
    rng = np.random.default_rng(9)
    train = rng.standard_normal((600, 16))
    prod = rng.standard_normal((400, 16))
    result = drift(train, prod, seed=0)
    assert abs(result["auc"] - 0.5) < 0.07
    assert result["p_value"] > 0.01
    assert result["share_out_of_coverage"] < 0.15


def test_production_outside_training_is_out_of_coverage() -> None:
    rng = np.random.default_rng(10)
    train, _ = _blobs(rng, 100, 3, 16, spread=0.1)
    inside = train[:20] + 0.01 * rng.standard_normal((20, 16)).astype(np.float32)
    outside = _unit(rng, 20, 16) * 3
    result = drift(train, np.vstack([inside, outside]), seed=0)
    assert result["out_of_coverage"][20:].all()
    assert not result["out_of_coverage"][:20].any()


def test_drift_degenerate_inputs() -> None:
    result = drift(np.ones((1, 3)), np.ones((1, 3)))
    assert result["auc"] == 0.5 and result["p_value"] == 1.0


def test_cluster_shift_ranks_biggest_change_first() -> None:
    rows = cluster_shift([0, 0, 1, 1], [1, 1, 1, 2])
    assert rows[0]["cluster"] == 0 and rows[0]["change"] == pytest.approx(-0.5)
    by_cluster = {r["cluster"]: r for r in rows}
    assert by_cluster[2]["train_share"] == 0.0
    assert by_cluster[2]["production_share"] == 0.25


def test_clusters_recover_separated_blobs() -> None:
    rng = np.random.default_rng(11)
    x, truth = _blobs(rng, 60, 4, 16)
    found = clusters(x, n_clusters=4, seed=0)
    # Same partition up to renaming: each true blob maps to exactly one found cluster.
    pairs = set(zip(truth.tolist(), found.tolist(), strict=True))
    assert len(pairs) == 4 and len({f for _, f in pairs}) == 4


def test_clusters_default_count_and_degenerate_inputs() -> None:
    assert default_cluster_count(20_000) == 100
    assert default_cluster_count(200) == 10
    assert default_cluster_count(1) == 1
    assert clusters(np.ones((1, 3))).tolist() == [0]
    same = clusters(np.ones((40, 3)), n_clusters=5)
    assert same.shape == (40,)
    assert len(set(same.tolist())) == 1
    assert clusters(np.empty((0, 3))).shape == (0,)


def test_cluster_summary_rates_and_top_terms() -> None:
    ids = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    labels = ["pet", "pet", "pet", "money", "money", "money", "money", "money"]
    is_error = np.array([1, 1, 0, 0, 0, 0, 0, 1], bool)
    texts = [
        "cat purr fur",
        "dog bark fur",
        "kitten fur purr",
        "fur paw",
        "stock price",
        "bond yield price",
        "shares price",
        "price fund",
    ]
    rows = cluster_summary(ids, labels, is_error, texts, top_n=2)
    assert [r["cluster"] for r in rows] == [0, 1]  # worst first
    assert rows[0]["size"] == 4 and rows[0]["error_rate"] == 0.5 and rows[0]["accuracy"] == 0.5
    assert rows[0]["majority_label"] == "pet" and rows[0]["majority_share"] == 0.75
    assert rows[0]["top_terms"][0] == "fur"
    assert rows[1]["top_terms"][0] == "price"
    assert cluster_summary([0], ["a"], [False])[0]["top_terms"] == []


def test_cluster_summary_tests_each_cluster_against_the_rest() -> None:
    from scipy.stats import fisher_exact

    # Cluster 0: 12 of 20 flagged; clusters 1 and 2: 2 of 40 each.
    ids = np.repeat([0, 1, 2], [20, 40, 40])
    is_error = np.zeros(100, bool)
    is_error[:12] = True
    is_error[20:22] = True
    is_error[60:62] = True
    rows = {r["cluster"]: r for r in cluster_summary(ids, ["a"] * 100, is_error)}
    p0 = fisher_exact([[12, 8], [4, 76]], alternative="greater").pvalue
    assert rows[0]["p_value"] == pytest.approx(p0)
    assert rows[0]["rest_error_rate"] == pytest.approx(4 / 80)
    assert rows[0]["significant"] and rows[0]["q_value"] == pytest.approx(3 * p0)
    assert not rows[1]["significant"] and not rows[2]["significant"]
    assert rows[1]["q_value"] == rows[2]["q_value"] == pytest.approx(rows[1]["p_value"])


def test_project_2d_shapes_and_separation() -> None:
    rng = np.random.default_rng(12)
    x, truth = _blobs(rng, 50, 2, 16)
    coords = project_2d(x)
    assert coords.shape == (100, 2) and np.isfinite(coords).all()
    a, b = coords[truth == 0].mean(axis=0), coords[truth == 1].mean(axis=0)
    assert np.linalg.norm(a - b) > 5 * coords[truth == 0].std(axis=0).max()
    assert project_2d(np.ones((1, 5))).shape == (1, 2)
    assert np.isfinite(project_2d(np.ones((10, 5)))).all()


def test_active_learning_spreads_the_budget_over_uncertain_regions() -> None:
    rng = np.random.default_rng(13)
    x, blob = _blobs(rng, 50, 4, 16)
    probs = np.tile([0.98, 0.02], (200, 1))
    probs[blob == 0] = [0.5, 0.5]  # blob 0: maximally uncertain
    probs[blob == 1] = [0.6, 0.4]  # blob 1: nearly as uncertain
    picked = active_learning_pick(probs, x, budget=6, seed=0, pool_factor=20)
    assert len(picked) == 6 and len(set(picked.tolist())) == 6
    assert blob[picked[0]] == 0
    # Pure uncertainty would take all six from blob 0; the round-robin reaches blob 1 too.
    assert {0, 1} <= set(blob[picked].tolist())


def test_active_learning_uncertainty_measures_and_edges() -> None:
    probs = np.array([[0.9, 0.1, 0.0], [0.4, 0.35, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    x = np.eye(3)
    for method in ("margin", "entropy"):
        assert active_learning_pick(probs, x, budget=1, uncertainty=method).tolist() == [2]
    assert sorted(active_learning_pick(probs, x, budget=10).tolist()) == [0, 1, 2]
    assert active_learning_pick(probs, x, budget=0).shape == (0,)
    with pytest.raises(ValueError, match="unknown uncertainty"):
        active_learning_pick(probs, x, budget=1, uncertainty="bald")


def test_planted_weak_slice_is_significant_and_others_are_not() -> None:
    rng = np.random.default_rng(14)
    n = 1000
    source = rng.choice(["web", "scan", "phone"], size=n).tolist()
    is_error = rng.random(n) < 0.05
    scan = np.array(source) == "scan"
    is_error[scan] = rng.random(scan.sum()) < 0.4  # planted: scans are wrong 40% of the time
    lengths = rng.integers(1, 500, size=n).tolist()
    rows = weak_slices({"source": source, "length": lengths}, is_error, min_size=20)
    assert rows[0]["column"] == "source" and rows[0]["value"] == "scan"
    assert rows[0]["significant"] and rows[0]["q_value"] < 1e-6
    assert rows[0]["error_rate"] > 0.3 and rows[0]["rest_error_rate"] < 0.1
    assert [r["value"] for r in rows if r["significant"]] == ["scan"]
    assert all(r["q_value"] >= r["p_value"] for r in rows)
    # Many-valued numeric column: quartile bins, not 500 one-row slices.
    assert len([r for r in rows if r["column"] == "length"]) == 4


def test_weak_slices_small_missing_and_whole_dataset_values() -> None:
    is_error = np.zeros(30, bool)
    rows = weak_slices(
        {"one": ["a"] * 30, "tiny": ["x"] * 5 + ["y"] * 25, "gaps": [None] * 20 + [1.0] * 10},
        is_error,
        min_size=20,
    )
    # "one" covers every row (nothing to compare with), "x" and "1.0" are under min_size.
    assert [(r["column"], r["value"]) for r in rows] == [("gaps", MISSING), ("tiny", "y")]
    assert not any(r["significant"] for r in rows)
    assert weak_slices({}, is_error) == []
    with pytest.raises(ValueError, match="has 2 values"):
        weak_slices({"bad": [1, 2]}, is_error)
