"""Production monitoring by class: has the mix of classes changed (label shift), and how much of a
window belongs to no training class at all (a new kind of data)?

Both read a classifier's probabilities. Training's are out of sample: a model run's, or those
of a 5-fold logistic regression on the training embeddings (`class_reference`). A production
row is then scored by one of the five fold models, drawn at random, so that on an unshifted
window a production row and a training row are scored alike (a model fitted on four fifths of
training, applied to a row it has not seen) and the two sides can be compared as they are.

Label shift is black-box shift detection and estimation (Lipton et al., 2018; Rabanser et al.,
2019): the test compares the predicted-class counts of the window with training's
out-of-fold ones (chi-square on the 2 x K table, Monte Carlo when a cell is small), each class
by Fisher's test (Bonferroni over the classes; the smallest of those and the table's p-value
are combined into the window's p-value), and the change of each class's true share is
estimated by inverting training's confusion matrix (q = C^-1 mu).

A new kind of data is a production row with low confidence *and* far from every class (the
cosine distance to its k-th nearest training row of the class, for the nearest class). The two
cuts are calibrated on training's own out-of-fold confidences and leave-one-out distances so
that `NEW_KIND_NOMINAL` of an unshifted window is flagged; a one-sided binomial test says
whether a window has more. How many of a new kind's rows the rule catches is estimated on
training by leaving each class out in turn, which turns the flagged share into an estimate of
the share of new-kind traffic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.engine import neighbours

# SciPy and scikit-learn are imported by the functions that use them: the web process imports
# this module for its constants.

FOLDS = 5
LR_C = 1.0  # on unit rows; 10 and 100 cross-validated worse on MiniLM text
CLASS_K = 3  # k-th nearest member of a class: small, since a class may have few rows
NEW_KIND_NOMINAL = 0.02  # share of an unshifted window flagged as a new kind, by construction
MIN_PER_CLASS = FOLDS  # a class with fewer training rows is left out of the reference
MONTE_CARLO_DRAWS = 2_000
MIN_EXPECTED = 5.0  # below this expected count in a cell, the chi-square p-value is simulated
Z_ONE_SIDED = 1.645  # 95% one-sided bound of an estimated change
MIN_RECALL_GAP = 0.05  # below this the flagged share says too little to estimate traffic
EXAMPLES = 50
_BLOCK = 1_024


@dataclass
class ClassReference:
    """Training's side of the class signals, computed once per check."""

    classes: list[str]
    labels: np.ndarray  # class index per training row
    prior: np.ndarray  # training's class shares
    predicted: np.ndarray  # out-of-fold predicted class per training row
    confusion: np.ndarray  # P(predicted i | true j), columns sum to 1
    vectors: np.ndarray  # unit rows
    conf_cut: float
    dist_cut: float
    nominal: float  # share of training flagged by the two cuts
    recall: float  # share of a left-out class flagged (mean over classes)
    source: str  # "embeddings" or "model run"
    coef: np.ndarray | None = None  # (folds, K, d) fold models, when fitted here
    intercept: np.ndarray | None = None  # (folds, K)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def class_distances(
    vectors: np.ndarray,
    ref_vectors: np.ndarray,
    ref_labels: np.ndarray,
    n_classes: int,
    *,
    leave_one_out: bool = False,
) -> np.ndarray:
    """(n, K): cosine distance of each row to the CLASS_K-th nearest reference row of each
    class; with `leave_one_out` the rows are the reference rows and never their own neighbour."""
    out = np.empty((len(vectors), n_classes), dtype=np.float64)
    members = [np.flatnonzero(ref_labels == c) for c in range(n_classes)]
    for start in range(0, len(vectors), _BLOCK):
        sims = vectors[start : start + _BLOCK] @ ref_vectors.T
        if leave_one_out:
            rows = np.arange(start, min(start + _BLOCK, len(vectors)))
            sims[rows - start, rows] = -np.inf
        for c, idx in enumerate(members):
            part = sims[:, idx]
            k = min(CLASS_K, part.shape[1] - (1 if leave_one_out else 0))
            kth = -np.partition(-part, k - 1, axis=1)[:, k - 1]
            out[start : start + len(part), c] = 1.0 - kth
    return out


def _cuts(conf: np.ndarray, near: np.ndarray, nominal: float) -> tuple[float, float]:
    """Confidence and distance cuts at one quantile level each (low confidence: below the
    tau-quantile; far: above the (1 - tau)-quantile), tau the smallest giving `nominal`."""
    low, high = 0.0, 1.0
    for _ in range(40):
        tau = (low + high) / 2
        rate = np.mean((conf < np.quantile(conf, tau)) & (near > np.quantile(near, 1 - tau)))
        low, high = (tau, high) if rate < nominal else (low, tau)
    return float(np.quantile(conf, high)), float(np.quantile(near, 1 - high))


def class_reference(
    train_vectors: np.ndarray,
    train_labels: Sequence[str] | np.ndarray,
    *,
    train_probs: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    seed: int = 0,
) -> ClassReference:
    """Training's classes for the label-shift and new-kind signals.

    `train_labels` are class names. Give `train_probs` (out-of-sample probabilities, columns in
    the order of `classes`) to compare with a model run's production probabilities; otherwise a
    5-fold logistic regression is fitted on the rows. Classes with fewer than MIN_PER_CLASS
    rows are left out, with their rows.
    """
    vectors = neighbours._unit_rows(train_vectors)
    n_all = len(vectors)
    names = np.asarray([str(x) for x in train_labels], dtype=object)
    if len(names) != len(vectors):
        raise ValueError("one training label per training row, please")
    counts = {c: int(np.count_nonzero(names == c)) for c in dict.fromkeys(names.tolist())}
    if classes is None:
        classes = sorted(counts)
    classes = [str(c) for c in classes]
    kept = [c for c in classes if counts.get(c, 0) >= MIN_PER_CLASS]
    if len(kept) < 2:
        raise ValueError(
            f"the class signals need two classes with at least {MIN_PER_CLASS} labelled "
            f"training rows each (found {len(kept)})"
        )
    column = {c: i for i, c in enumerate(classes)}
    rows = np.flatnonzero(np.isin(names, kept))
    vectors, names = vectors[rows], names[rows]
    position = {c: i for i, c in enumerate(kept)}
    labels = np.fromiter((position[c] for c in names), dtype=np.int64, count=len(names))
    n_classes = len(kept)
    coef = intercept = None
    if train_probs is not None:
        probs = np.asarray(train_probs, dtype=np.float64)
        if probs.shape != (n_all, len(classes)):
            raise ValueError("training probabilities must be (rows, classes)")
        probs = probs[rows][:, [column[c] for c in kept]]
        probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
        source = "model run"
    else:
        probs, coef, intercept = _cross_validated(vectors, labels, n_classes, seed)
        source = "embeddings"
    predicted = probs.argmax(axis=1)
    prior = np.bincount(labels, minlength=n_classes) / len(labels)
    confusion = np.zeros((n_classes, n_classes))
    np.add.at(confusion, (predicted, labels), 1.0)
    confusion /= np.clip(confusion.sum(axis=0, keepdims=True), 1.0, None)

    conf = probs.max(axis=1)
    dist = class_distances(vectors, vectors, labels, n_classes, leave_one_out=True)
    near = dist.min(axis=1)
    conf_cut, dist_cut = _cuts(conf, near, NEW_KIND_NOMINAL)
    nominal = float(np.mean((conf < conf_cut) & (near > dist_cut)))
    # A class left out: its rows' probabilities over the other classes (the softmax
    # renormalised without it) and their distance to the nearest other class.
    recalls = []
    for c in range(n_classes):
        own = labels == c
        others = np.delete(probs[own], c, axis=1)
        conf_c = others.max(axis=1) / np.clip(others.sum(axis=1), 1e-12, None)
        near_c = np.delete(dist[own], c, axis=1).min(axis=1)
        recalls.append(float(np.mean((conf_c < conf_cut) & (near_c > dist_cut))))
    return ClassReference(
        classes=kept,
        labels=labels,
        prior=prior,
        predicted=predicted,
        confusion=confusion,
        vectors=vectors,
        conf_cut=conf_cut,
        dist_cut=dist_cut,
        nominal=max(nominal, 1.0 / len(labels)),
        recall=float(np.mean(recalls)),
        source=source,
        coef=coef,
        intercept=intercept,
    )


def _cross_validated(
    x: np.ndarray, y: np.ndarray, n_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold probabilities and the fold models' weights."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros((len(x), n_classes))
    coef = np.zeros((FOLDS, n_classes, x.shape[1]))
    intercept = np.zeros((FOLDS, n_classes))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    for f, (fit, held) in enumerate(folds.split(x, y)):
        model = LogisticRegression(C=LR_C, max_iter=1000)
        model.fit(x[fit], y[fit])
        # A class missing from a fold's fit keeps weight 0 and a very low intercept.
        coef[f, model.classes_] = model.coef_ if n_classes > 2 else 0.0
        intercept[f] = -30.0
        intercept[f, model.classes_] = model.intercept_ if n_classes > 2 else 0.0
        if n_classes == 2:
            coef[f, 1], intercept[f, 1] = model.coef_[0], model.intercept_[0]
        probs[held] = _softmax(x[held] @ coef[f].T + intercept[f])
    return probs, coef, intercept


def production_probabilities(
    ref: ClassReference, production_vectors: np.ndarray, *, seed: int = 0
) -> np.ndarray:
    """Each production row scored by one fold model drawn at random (see the module's note)."""
    if ref.coef is None or ref.intercept is None:
        raise ValueError("this reference compares a model run's probabilities: give them")
    rows = neighbours._unit_rows(production_vectors).astype(np.float64)
    fold = np.random.default_rng(seed).integers(0, len(ref.coef), size=len(rows))
    logits = np.einsum("nd,nkd->nk", rows, ref.coef[fold]) + ref.intercept[fold]
    return _softmax(logits)


def _table_p_value(train_counts: np.ndarray, prod_counts: np.ndarray, seed: int) -> float:
    """p-value of the 2 x K table (training vs production predicted-class counts): Pearson's
    chi-square, simulated given the margins when an expected count is below MIN_EXPECTED."""
    from scipy import stats

    keep = (train_counts + prod_counts) > 0
    t, p = train_counts[keep].astype(np.float64), prod_counts[keep].astype(np.float64)
    if len(t) < 2:
        return 1.0
    total = t + p
    n_t, n_p = t.sum(), p.sum()
    expected_p = total * n_p / (n_t + n_p)
    expected_t = total - expected_p

    def chi2(prod: np.ndarray) -> np.ndarray:
        train = total - prod
        return np.asarray(
            ((prod - expected_p) ** 2 / expected_p + (train - expected_t) ** 2 / expected_t).sum(
                axis=-1
            )
        )

    observed = float(chi2(p))
    if min(expected_p.min(), expected_t.min()) >= MIN_EXPECTED:
        return float(stats.chi2.sf(observed, len(t) - 1))
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_hypergeometric(
        total.astype(np.int64), int(n_p), size=MONTE_CARLO_DRAWS
    )
    return float(
        (1 + np.count_nonzero(chi2(draws.astype(np.float64)) >= observed - 1e-9))
        / (1 + MONTE_CARLO_DRAWS)
    )


def _fisher(a: int, n_a: int, b: int, n_b: int) -> float:
    from scipy import stats

    return float(stats.fisher_exact([[a, n_a - a], [b, n_b - b]])[1])


def check(
    ref: ClassReference,
    production_vectors: np.ndarray,
    *,
    production_probs: np.ndarray | None = None,
    production_keys: Sequence[Any] | None = None,
    p_value_threshold: float = 0.01,
    label_shift_threshold: float = 0.15,
    new_kind_threshold: float = 0.10,
    seed: int = 0,
) -> dict[str, Any]:
    """Label shift and new-kind share of one window.

    `production_probs` (columns in the reference's `classes` order) come from a model run;
    without them the reference's fold models score the rows. Returns `label_shift` (p_value,
    classes: each class's training share, estimated production share, change with its
    standard error, predicted shares on both sides, Fisher p-value Bonferroni-corrected,
    significant, examples; biggest change first), `new_kind` (share flagged, nominal, p_value,
    estimated share of new-kind traffic with its 95% upper bound, examples, flags) and
    `crossed` (the signals past their thresholds, as in `monitor.window_check`).
    """
    from scipy import stats

    prod = neighbours._unit_rows(production_vectors)
    n_p, n_t, n_classes = len(prod), len(ref.labels), len(ref.classes)
    if production_probs is None:
        probs = production_probabilities(ref, prod, seed=seed)
    else:
        probs = np.asarray(production_probs, dtype=np.float64)
        if probs.shape != (n_p, n_classes):
            raise ValueError(
                f"production probabilities must be ({n_p}, {n_classes}), got {probs.shape}"
            )
        probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    keys = None if production_keys is None else list(production_keys)

    # Label shift: predicted-class counts, then the true shares by q = C^-1 mu.
    predicted = probs.argmax(axis=1)
    t_counts = np.bincount(ref.predicted, minlength=n_classes)
    p_counts = np.bincount(predicted, minlength=n_classes)
    p_value = _table_p_value(t_counts, p_counts, seed)
    mu = p_counts / n_p
    inverse = np.linalg.pinv(ref.confusion)
    estimate = np.clip(inverse @ mu, 0.0, None)
    estimate = estimate / estimate.sum() if estimate.sum() > 0 else ref.prior.copy()
    covariance = inverse @ ((np.diag(mu) - np.outer(mu, mu)) / n_p) @ inverse.T
    se = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    rows: list[dict[str, Any]] = []
    for c in range(n_classes):
        corrected = min(1.0, n_classes * _fisher(int(p_counts[c]), n_p, int(t_counts[c]), n_t))
        row: dict[str, Any] = {
            "class": ref.classes[c],
            "train_share": float(ref.prior[c]),
            "production_share": float(estimate[c]),
            "change": float(estimate[c] - ref.prior[c]),
            "standard_error": float(se[c]),
            "train_predicted_share": float(t_counts[c] / n_t),
            "production_predicted_share": float(mu[c]),
            "n_predicted": int(p_counts[c]),
            "p_value": corrected,
            "significant": corrected < p_value_threshold,
        }
        if keys is not None:
            members = np.flatnonzero(predicted == c)
            members = members[np.argsort(-probs[members, c], kind="stable")][:EXAMPLES]
            row["examples"] = [keys[i] for i in members.tolist()]
        rows.append(row)
    rows.sort(key=lambda r: -abs(r["change"]))
    # One class moving much is seen best class by class, many moving a little by the table:
    # the two p-values are combined (Cauchy, valid under their dependence).
    p_value = neighbours.cauchy_combination([p_value, min(r["p_value"] for r in rows)])
    # A class counts when its change is significant and may reach the threshold: its 95%
    # upper bound does. An unshifted window alerts only as often as the test errs.
    counted = [
        r
        for r in rows
        if p_value < p_value_threshold
        and r["significant"]
        and abs(r["change"]) + Z_ONE_SIDED * r["standard_error"] >= label_shift_threshold
    ]
    max_change = max((abs(r["change"]) for r in rows), default=0.0)

    # New kind: low confidence and far from every class.
    conf = probs.max(axis=1)
    near = class_distances(prod, ref.vectors, ref.labels, n_classes).min(axis=1)
    flags = (conf < ref.conf_cut) & (near > ref.dist_cut)
    n_flagged = int(np.count_nonzero(flags))
    share = n_flagged / n_p
    new_p = float(stats.binomtest(n_flagged, n_p, ref.nominal, alternative="greater").pvalue)
    gap = ref.recall - ref.nominal
    estimated = upper = None
    if gap >= MIN_RECALL_GAP:
        estimated = float(np.clip((share - ref.nominal) / gap, 0.0, 1.0))
        spread = np.sqrt(max(share * (1 - share), ref.nominal * (1 - ref.nominal)) / n_p) / gap
        upper = float(min(1.0, estimated + Z_ONE_SIDED * spread))
    flagged = np.flatnonzero(flags)
    flagged = flagged[np.argsort(conf[flagged], kind="stable")]  # least confident first
    new_kind = {
        "share": share,
        "n_flagged": n_flagged,
        "nominal": ref.nominal,
        "p_value": new_p,
        "estimated_share": estimated,
        "upper": upper,
        "recall": ref.recall,
        "flags": flags,
        "examples": [keys[i] for i in flagged[:EXAMPLES].tolist()] if keys is not None else [],
    }

    crossed: list[dict[str, Any]] = []
    if counted:
        worst = counted[0]
        crossed.append(
            {
                "signal": "label_shift",
                "value": abs(worst["change"]),
                "threshold": label_shift_threshold,
                "class": worst["class"],
                "change": worst["change"],
                "classes": len(counted),
            }
        )
    if new_p < p_value_threshold and (upper is None or upper >= new_kind_threshold):
        crossed.append(
            {
                "signal": "new_kind",
                "value": estimated if estimated is not None else share,
                "threshold": new_kind_threshold,
                "share": share,
            }
        )
    return {
        "label_shift": {
            "p_value": p_value,
            "max_change": float(max_change),
            "classes": rows,
            "source": ref.source if production_probs is None else "model run",
        },
        "new_kind": new_kind,
        "crossed": crossed,
    }
