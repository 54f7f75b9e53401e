"""Whole-dataset neighbour kernels over arrays: kNN, outliers, duplicates, drift, clusters, 2D map."""

from __future__ import annotations

import functools
import importlib
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from workers.engine.slices import with_q_values, worse_than_rest

# faiss, SciPy and scikit-learn are loaded by the functions that use them: the web process
# imports this module for its constants and small helpers, and should not pay for loading them.


@functools.cache
def _faiss() -> Any:
    """The faiss module, loaded on first use; None where faiss-cpu is missing, so the exact
    path still works without it. Imported by name: faiss ships no type information."""
    try:
        return importlib.import_module("faiss")
    except ImportError:  # pragma: no cover - exercised only where faiss-cpu is missing
        return None


def __getattr__(name: str) -> Any:
    # `neighbours.faiss` reads as the module (or None) without loading it at import time.
    if name == "faiss":
        return _faiss()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Engine choice, measured here on 100,000 x 384 unit float32 vectors, k=10 for every point,
# 2 cores shared with other work: exact chunked BLAS (matmul in row blocks + argpartition)
# 202 s; faiss exact IndexFlatIP 286 s; usearch HNSW 25 s for just 20,000 rows (minutes at
# 100k); faiss HNSW M=32/efConstruction=80 121 s; this module's knn() (faiss HNSW, settings
# below) 20 s on clustered data with recall@10 0.98, 44 s on structureless random vectors.
# Exact work is quadratic, so past ~50,000 rows only a graph index fits the 5-minute scoring
# budget, and faiss built its graph several times faster than usearch on this CPU. Below
# `exact_below` exact BLAS is fast enough and loses no recall.
EXACT_BELOW = 50_000
_BLOCK_ROWS = 2048
_HNSW_M = 16
_HNSW_EF_CONSTRUCTION = 40
_HNSW_EF_SEARCH = 64
METRICS = ("cosine", "l2")


def _float_rows(vectors: np.ndarray) -> np.ndarray:
    """Contiguous float32 rows, as faiss and the blocked products want them."""
    x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    return x


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length, so inner product is cosine similarity."""
    x = _float_rows(vectors)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # A zero vector has no direction; leaving it at zero gives it similarity 0 to everything
    # instead of NaNs that would poison every downstream statistic.
    norms[norms == 0] = 1.0
    return np.asarray(x / norms, dtype=np.float32)


class NeighbourIndex:
    """k-nearest-neighbour search over a fixed set of rows, by cosine (default) or Euclidean
    distance (`metric="l2"`, for features that are not compared by angle).

    Exact (blocked matrix products) below `exact_below` rows, else a faiss HNSW graph. The
    graph saves to bytes, so one build serves every worker that answers a chunk of the queries.
    Searches return (indices, scores), nearest first: the score is the cosine similarity, or
    minus the squared distance for "l2", so that larger is always nearer.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        *,
        exact_below: int = EXACT_BELOW,
        graph: bytes | np.ndarray | None = None,
        metric: str = "cosine",
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: use one of {METRICS}")
        self.metric = metric
        self.base = _unit_rows(vectors) if metric == "cosine" else _float_rows(vectors)
        self.graph: Any = None
        faiss = _faiss()
        if graph is not None:
            self.graph = faiss.deserialize_index(np.frombuffer(graph, dtype=np.uint8))
        elif len(self.base) >= exact_below and len(self.base) > 1 and faiss is not None:
            kind = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
            self.graph = faiss.IndexHNSWFlat(self.base.shape[1], _HNSW_M, kind)
            self.graph.hnsw.efConstruction = _HNSW_EF_CONSTRUCTION
            self.graph.add(self.base)

    def to_bytes(self) -> bytes | None:
        return None if self.graph is None else bytes(_faiss().serialize_index(self.graph).tobytes())

    def neighbours(
        self, rows: np.ndarray, k: int, *, within: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest of the indexed rows `rows` (never themselves), among the rows where
        `within` is true (default: all). Nearest first; an unfilled slot is -1 / -inf."""
        rows = np.asarray(rows, dtype=np.int64)
        return self._search(self.base[rows], k, own=rows, within=within)

    def query(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest indexed rows of vectors from outside the index."""
        q = _unit_rows(queries) if self.metric == "cosine" else _float_rows(queries)
        if q.shape[0] and q.shape[1] != self.base.shape[1]:
            raise ValueError("queries and vectors must have the same dimension")
        return self._search(q, k, own=None, within=None)

    def _search(
        self, q: np.ndarray, k: int, *, own: np.ndarray | None, within: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        available = len(self.base) if within is None else int(np.count_nonzero(within))
        if own is not None and (within is None or np.asarray(within)[own].any()):
            available -= 1  # a row is never its own neighbour
        k = max(0, min(int(k), available))
        if k == 0 or q.shape[0] == 0:
            return np.empty((q.shape[0], k), dtype=np.int64), np.empty((q.shape[0], k), np.float32)
        if self.graph is None:
            return self._exact(q, k, own=own, within=within)
        return self._hnsw(q, k, own=own, within=within)

    def _exact(
        self, q: np.ndarray, k: int, *, own: np.ndarray | None, within: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        candidates = np.arange(len(self.base)) if within is None else np.flatnonzero(within)
        base = self.base[candidates]
        # -|q - b|^2 = 2 q.b - |b|^2 - |q|^2: the distance without forming the differences.
        base_sq = (base * base).sum(axis=1) if self.metric == "l2" else None
        m = q.shape[0]
        indices = np.empty((m, k), dtype=np.int64)
        sims = np.empty((m, k), dtype=np.float32)
        for start in range(0, m, _BLOCK_ROWS):
            stop = min(start + _BLOCK_ROWS, m)
            block = q[start:stop] @ base.T
            if base_sq is not None:
                block = 2.0 * block - base_sq[None, :]
                block -= (q[start:stop] * q[start:stop]).sum(axis=1)[:, None]
                np.minimum(block, 0.0, out=block)  # rounding can make a distance negative
            if own is not None:
                # Mask by position, not by value: an exact duplicate of a point must be found.
                block[own[start:stop, None] == candidates[None, :]] = -np.inf
            if k < block.shape[1]:
                part = np.argpartition(-block, k - 1, axis=1)[:, :k]
            else:
                part = np.broadcast_to(np.arange(block.shape[1]), (stop - start, block.shape[1]))
            part_sims = np.take_along_axis(block, part, axis=1)
            order = np.argsort(-part_sims, axis=1, kind="stable")
            indices[start:stop] = candidates[np.take_along_axis(part, order, axis=1)[:, :k]]
            sims[start:stop] = np.take_along_axis(part_sims, order, axis=1)[:, :k]
        return indices, sims

    def _hnsw(
        self, q: np.ndarray, k: int, *, own: np.ndarray | None, within: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        want = k + 1 if own is not None else k
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(_HNSW_EF_SEARCH, want)
        if within is not None:
            bitmap = np.packbits(np.asarray(within, dtype=bool), bitorder="little")
            selector = faiss.IDSelectorBitmap(len(self.base), faiss.swig_ptr(bitmap))
            params.sel = selector
        sims, keys = self.graph.search(q, want, params=params)
        keys = keys.astype(np.int64)  # faiss marks unfilled slots -1
        sims = sims.astype(np.float32)
        if self.metric == "l2":
            sims = -sims  # faiss gives squared distances; larger is nearer here
        if own is not None:
            mine = keys == own[:, None]
            # Drop the query's own key when the graph returned it, else the weakest extra one.
            drop = np.where(mine.any(axis=1), mine.argmax(axis=1), want - 1)
            keep = np.ones_like(keys, dtype=bool)
            keep[np.arange(keys.shape[0]), drop] = False
            keys = keys[keep].reshape(-1, k)
            sims = sims[keep].reshape(-1, k)
        sims[keys < 0] = -np.inf
        return keys, sims


def knn(
    vectors: np.ndarray,
    *,
    k: int,
    queries: np.ndarray | None = None,
    exact_below: int = EXACT_BELOW,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of `vectors` by cosine, for each query (default: each row, not itself).

    Returns (indices, similarities), both shaped (queries, k') with k' = min(k, rows available),
    nearest first. The HNSW path may leave a slot unfilled: index -1, similarity -inf.
    """
    index = NeighbourIndex(vectors, exact_below=exact_below)
    if queries is None:
        return index.neighbours(np.arange(len(index.base)), k)
    return index.query(queries, k)


def _percentile_against(reference_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Share of reference scores at or below each score: 0-1, 1 = beyond all the reference."""
    if reference_scores.size == 0:
        return np.zeros(scores.shape, dtype=np.float64)
    ordered = np.sort(reference_scores)
    return np.searchsorted(ordered, scores, side="right") / ordered.size


def duplicate_findings(
    groups: Sequence[Sequence[int]], splits: Sequence[Any], labels: Sequence[Any]
) -> dict[str, Any]:
    """Per duplicate group: which splits and labels it spans, leakage and label conflicts.

    Leakage is a group holding a training sample and a sample of any other split: the model
    has effectively seen that evaluation sample. A label conflict is one group with more than
    one (non-missing) label: at least one of them is wrong, or the task is ambiguous.
    """
    records: list[dict[str, Any]] = []
    for number, group in enumerate(groups):
        group_splits = sorted({str(splits[i]) for i in group})
        group_labels = sorted({str(labels[i]) for i in group if labels[i] is not None})
        leaked_into = [s for s in group_splits if s != "train"] if "train" in group_splits else []
        records.append(
            {
                "group": number,
                "members": list(group),
                "splits": group_splits,
                "labels": group_labels,
                "leakage": [("train", s) for s in leaked_into],
                "conflicting_labels": len(group_labels) > 1,
            }
        )
    leaked = [r for r in records if r["leakage"]]
    conflicting = [r for r in records if r["conflicting_labels"]]
    return {
        "groups": records,
        "n_groups": len(records),
        "n_duplicate_samples": sum(len(r["members"]) for r in records),
        "leakage_groups": [r["group"] for r in leaked],
        "n_leaked_samples": sum(
            sum(1 for i in r["members"] if str(splits[i]) != "train") for r in leaked
        ),
        "conflicting_label_groups": [r["group"] for r in conflicting],
    }


def knn_label_agreement(
    indices: np.ndarray, labels: Sequence[Any] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(agreement, majority label, majority count) from the self-kNN table of `knn(vectors)`.

    Row i of `indices` is sample i, so `labels` covers every row of the dataset.
    agreement is the share of a sample's neighbours carrying its own label; majority label and
    count give the reason text: "8 of 10 nearest neighbours are dog". Ties in the majority go
    to the label of the nearer neighbour. Unfilled slots (-1) are left out of every share.
    """
    labels_arr = np.asarray(labels)
    idx = np.asarray(indices, dtype=np.int64)
    m, k = idx.shape
    if m == 0 or k == 0:
        # No neighbours, no evidence: agreement 0 and the sample's own label as the "majority".
        return np.zeros(m), labels_arr[:m].copy(), np.zeros(m, dtype=np.int64)
    _, codes = np.unique(labels_arr, return_inverse=True)
    codes = codes.reshape(-1)
    valid = idx >= 0
    neigh = np.where(valid, codes[np.where(valid, idx, 0)], -1)
    n_valid = valid.sum(axis=1)
    own = codes[:m]
    agreement = np.divide(
        ((neigh == own[:, None]) & valid).sum(axis=1),
        n_valid,
        out=np.zeros(m),
        where=n_valid > 0,
    )
    # k is small (~10), so a k x k equality count per row beats building a rows x classes table.
    same = (neigh[:, :, None] == neigh[:, None, :]) & valid[:, None, :] & valid[:, :, None]
    counts = same.sum(axis=2)
    best = counts.argmax(axis=1)  # first maximum = nearest neighbour among tied labels
    majority_count = counts[np.arange(m), best]
    majority = labels_arr[np.where(valid, idx, 0)[np.arange(m), best]]
    return agreement, majority, majority_count


def _domain_classifier_auc(
    train: np.ndarray, prod: np.ndarray, *, seed: int, max_per_side: int
) -> tuple[float, float, int, int]:
    from scipy import stats
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(seed)
    # Subsample: a few thousand per side pins the AUC to ~0.01 and keeps the fit to seconds
    # (5-fold LogisticRegression on all 100k rows took 90 s here).
    if len(train) > max_per_side:
        train = train[rng.choice(len(train), max_per_side, replace=False)]
    if len(prod) > max_per_side:
        prod = prod[rng.choice(len(prod), max_per_side, replace=False)]
    n_t, n_p = len(train), len(prod)
    folds = min(5, n_t, n_p)
    if folds < 2:
        return 0.5, 1.0, n_t, n_p
    x = np.vstack([train, prod])
    y = np.r_[np.zeros(n_t), np.ones(n_p)]
    model = LogisticRegression(max_iter=500, C=1.0)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    # AUC is the Mann-Whitney U statistic scaled by n_t * n_p: the pooled cross-validated AUC.
    result = stats.mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater")
    auc = float(result.statistic) / (n_t * n_p)
    # The p-value is not the pooled U test's: out-of-fold scores share training data, and on
    # unshifted data that test fell below 0.01 three to eight times in a hundred, not one. Within
    # one fold the held-out rows are exchangeable given that fold's model, so its own one-sided
    # U test is exact; the folds' p-values are dependent, and the Cauchy combination (Liu & Xie,
    # 2020) stays valid under dependence: about one in a hundred below 0.01 (docs/monitoring.md).
    fold_p = []
    for _, held_out in cv.split(x, y):
        fold_y = y[held_out]
        fold_scores = scores[held_out]
        fold_p.append(
            stats.mannwhitneyu(
                fold_scores[fold_y == 1], fold_scores[fold_y == 0], alternative="greater"
            ).pvalue
        )
    return auc, cauchy_combination(fold_p), n_t, n_p


def cauchy_combination(p_values: Sequence[float]) -> float:
    """One p-value from several dependent ones: the Cauchy combination test (equal weights)."""
    from scipy import stats

    p = np.clip(np.asarray(p_values, dtype=np.float64), 1e-300, 1.0 - 1e-15)
    if p.size == 0:
        return 1.0
    # tan((0.5 - p) pi) loses precision for tiny p, where it is 1 / (p pi) to first order.
    terms = np.where(p < 1e-15, 1.0 / (p * np.pi), np.tan((0.5 - p) * np.pi))
    return float(min(1.0, stats.cauchy.sf(terms.mean())))


def kth_distance(sims: np.ndarray) -> np.ndarray:
    """Cosine distance to the k-th (last) neighbour of each row of a kNN table."""
    return 1.0 - sims[:, -1] if sims.shape[1] else np.zeros(len(sims))


def drift(
    train_vectors: np.ndarray,
    production_vectors: np.ndarray,
    *,
    seed: int = 0,
    k: int = 10,
    coverage_percentile: float = 0.95,
    max_per_side: int = 5_000,
    kth_distances: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Production vs training: a dataset-level two-sample test and per-sample out-of-coverage.

    Dataset level: a cross-validated logistic-regression domain classifier; AUC near 0.5 means
    the two are indistinguishable, with a Mann-Whitney p-value. Per sample: the distance to the
    k-th nearest training sample, as a percentile of training's own k-th distances; above the
    95th percentile the sample sits where the model saw little data (Galileo's core distance).
    `kth_distances` (training's, production's) can be given when a kNN table is at hand.
    """
    train = _unit_rows(train_vectors)
    prod = _unit_rows(production_vectors)
    auc, p_value, n_t, n_p = _domain_classifier_auc(
        train, prod, seed=seed, max_per_side=max_per_side
    )
    if kth_distances is None:
        index = NeighbourIndex(train)
        _, train_sims = index.neighbours(np.arange(len(train)), k)
        _, prod_sims = index.query(prod, k)
        kth_distances = (kth_distance(train_sims), kth_distance(prod_sims))
    train_kth, prod_kth = kth_distances
    percentile = _percentile_against(train_kth, prod_kth)
    out = percentile > coverage_percentile
    return {
        "auc": auc,
        "p_value": p_value,
        "n_train_used": n_t,
        "n_production_used": n_p,
        "coverage_percentile": percentile,
        "out_of_coverage": out,
        "share_out_of_coverage": float(out.mean()) if out.size else 0.0,
        "coverage_threshold_distance": (
            float(np.quantile(train_kth, coverage_percentile)) if train_kth.size else 0.0
        ),
    }


def cluster_shift(
    train_clusters: np.ndarray | Sequence[int], prod_clusters: np.ndarray | Sequence[int]
) -> list[dict[str, Any]]:
    """Per cluster: share of training vs production, biggest absolute change first."""
    train_c = np.asarray(train_clusters)
    prod_c = np.asarray(prod_clusters)
    rows = []
    for cluster in np.union1d(train_c, prod_c).tolist():
        t_share = float((train_c == cluster).mean()) if train_c.size else 0.0
        p_share = float((prod_c == cluster).mean()) if prod_c.size else 0.0
        rows.append(
            {
                "cluster": cluster,
                "train_share": t_share,
                "production_share": p_share,
                "change": p_share - t_share,
            }
        )
    return sorted(rows, key=lambda r: (-abs(r["change"]), r["cluster"]))


def default_cluster_count(n: int, *, cap: int = 100) -> int:
    """~sqrt(n/2): a rule of thumb giving clusters of a reviewable size, capped for the UI."""
    if n <= 0:
        return 0
    return max(1, min(cap, n, round(math.sqrt(n / 2))))


def clusters(vectors: np.ndarray, *, n_clusters: int | None = None, seed: int = 0) -> np.ndarray:
    """Cluster id per row, MiniBatchKMeans on unit vectors (so Euclidean follows cosine)."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    x = _unit_rows(vectors)
    n = x.shape[0]
    count = default_cluster_count(n) if n_clusters is None else max(1, min(n_clusters, n))
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if count == 1:
        return np.zeros(n, dtype=np.int64)
    model = MiniBatchKMeans(
        n_clusters=count, random_state=seed, n_init=3, batch_size=min(4096, max(1024, n))
    )
    with warnings.catch_warnings():
        # Fewer distinct points than clusters (e.g. all-identical vectors) is a fact of the
        # data, not an error: KMeans still labels every row.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return np.asarray(model.fit_predict(x), dtype=np.int64)


def _top_terms_per_cluster(
    cluster_ids: np.ndarray, texts: Sequence[str], cluster_order: list[Any], top_n: int
) -> dict[Any, list[str]]:
    """c-TF-IDF (BERTopic): each cluster's texts as one document; term weight = tf * log(1 + A/f)."""
    from sklearn.feature_extraction.text import CountVectorizer

    try:
        counts = CountVectorizer(stop_words="english", min_df=1).fit(texts)
    except ValueError:  # every text empty or stop words only: no vocabulary
        return {c: [] for c in cluster_order}
    doc_terms = counts.transform(texts)
    vocab = counts.get_feature_names_out()
    onehot = np.stack([cluster_ids == c for c in cluster_order]).astype(np.float64)
    per_cluster = np.asarray((doc_terms.T @ onehot.T).T)  # clusters x terms
    totals = per_cluster.sum(axis=1, keepdims=True)
    tf = np.divide(per_cluster, totals, out=np.zeros_like(per_cluster), where=totals > 0)
    freq = per_cluster.sum(axis=0)
    avg_words = totals.mean()
    idf = np.log1p(np.divide(avg_words, freq, out=np.zeros_like(freq), where=freq > 0))
    weights = tf * idf
    result = {}
    for row, c in enumerate(cluster_order):
        best = np.argsort(-weights[row], kind="stable")[:top_n]
        result[c] = [str(vocab[j]) for j in best if weights[row, j] > 0]
    return result


def cluster_summary(
    cluster_ids: np.ndarray | Sequence[int],
    labels: Sequence[Any] | np.ndarray,
    is_error: np.ndarray | Sequence[bool],
    texts: Sequence[str] | None = None,
    *,
    predicted: np.ndarray | Sequence[Any] | None = None,
    top_n: int = 5,
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """Per cluster: size, error rate, accuracy, majority label and (for text) top terms.

    Accuracy is the model's (predicted == label) when predictions are given, else the share
    not flagged as an error. Each cluster's error rate is tested against the rest's as a weak
    slice is (one-sided Fisher test, Benjamini-Hochberg q-value over all clusters, `significant`
    at q < alpha). Sorted worst first (error rate, then size) so the UI can surface the weakest
    clusters.
    """

    ids = np.asarray(cluster_ids)
    errors = np.asarray(is_error, dtype=bool)
    labels_arr = np.asarray(labels)
    correct = None if predicted is None else np.asarray(predicted) == labels_arr
    order = np.unique(ids).tolist()
    terms = _top_terms_per_cluster(ids, texts, order, top_n) if texts is not None else {}
    rows = []
    for c in order:
        in_c = ids == c
        size = int(in_c.sum())
        test = worse_than_rest(errors, in_c)
        values, value_counts = np.unique(labels_arr[in_c], return_counts=True)
        top = int(value_counts.argmax())
        majority = values[top]
        rows.append(
            {
                "cluster": c,
                "size": size,
                "error_rate": test["error_rate"],
                "rest_error_rate": test["rest_error_rate"],
                "p_value": test["p_value"],
                "accuracy": test["accuracy"] if correct is None else float(correct[in_c].mean()),
                # NumPy scalars become plain Python values so the row serialises to JSON.
                "majority_label": majority.item() if hasattr(majority, "item") else majority,
                "majority_share": float(value_counts[top] / size),
                "top_terms": terms.get(c, []),
            }
        )
    with_q_values(rows, alpha=alpha)
    return sorted(rows, key=lambda r: (-r["error_rate"], -r["size"], r["cluster"]))


def project_2d(vectors: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """2D map coordinates by PCA: seconds on 100k rows. UMAP keeps local structure better but
    needs umap-learn and minutes; it can replace this behind the same signature."""
    from sklearn.decomposition import PCA

    x = _unit_rows(vectors)
    n, d = x.shape
    out = np.zeros((n, 2), dtype=np.float32)
    components = min(2, n, d)
    if n < 2 or components < 1 or not np.ptp(x, axis=0).any():
        return out  # one point, or all identical: nothing to spread, everyone at the origin
    solver = "randomized" if n > 1000 and d > 2 else "full"
    coords = PCA(n_components=components, svd_solver=solver, random_state=seed).fit_transform(x)
    out[:, :components] = coords
    return out


def _uncertainty(probs: np.ndarray, method: str) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"expected probabilities shaped (samples, classes), got {p.shape}")
    if method == "entropy":
        logs = np.log(p, out=np.zeros_like(p), where=p > 0)
        # Divided by log(classes) so the score is 0-1 whatever the class count.
        return np.asarray(-(p * logs).sum(axis=1) / max(math.log(p.shape[1]), 1e-12))
    if method == "margin":
        if p.shape[1] == 1:
            return 1.0 - p[:, 0]
        top2 = -np.partition(-p, 1, axis=1)[:, :2]
        return 1.0 - (top2[:, 0] - top2[:, 1])
    raise ValueError(f"unknown uncertainty method {method!r}: use 'margin' or 'entropy'")


def active_learning_pick(
    probs: np.ndarray,
    vectors: np.ndarray,
    *,
    budget: int,
    seed: int = 0,
    uncertainty: str = "margin",
    pool_factor: int = 10,
) -> np.ndarray:
    """Row indices to label next: uncertain, and spread over the embedding space.

    Cluster-Margin (Citovsky et al., 2021): take the `pool_factor * budget` most uncertain
    rows, cluster them, then pick round-robin across clusters, most uncertain first within each.
    Pure uncertainty spends the budget on one confusing corner (often near-duplicates); the
    round-robin keeps every uncertain region represented. Returned in pick order.
    """
    scores = _uncertainty(probs, uncertainty)
    n = scores.shape[0]
    budget = max(0, min(int(budget), n))
    if budget == 0:
        return np.empty(0, dtype=np.int64)
    # Stable sort with a seeded shuffle first, so ties do not always favour low row numbers.
    shuffled = np.random.default_rng(seed).permutation(n)
    by_uncertainty = shuffled[np.argsort(-scores[shuffled], kind="stable")]
    pool = by_uncertainty[: min(n, max(budget, pool_factor * budget))]
    groups = clusters(np.asarray(vectors)[pool], n_clusters=budget, seed=seed)
    # Pool is already most-uncertain first, so each cluster's queue is too.
    queues = [pool[groups == g].tolist() for g in np.unique(groups)]
    # Clusters whose best candidate is most uncertain go first in every round.
    queues.sort(key=lambda q: -scores[q[0]])
    picked: list[int] = []
    depth = 0
    while len(picked) < budget:
        for queue in queues:
            if depth < len(queue) and len(picked) < budget:
                picked.append(queue[depth])
        depth += 1
    return np.asarray(picked, dtype=np.int64)
