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

A new kind of data is a production row far from every class and unlike what the classifier
knows. Far: its Mahalanobis distance to the nearest class centre, under the classes' shared
within-class covariance (Lee et al., 2018; Ledoit-Wolf shrinkage, since a class has few rows for
its many dimensions). Unsure: the entropy of its class probabilities. The geometry is fitted in
the same five folds as the classifier, so training's distances and entropies are out of fold,
and a production row is measured by one fold drawn at random, as it is scored. Each of the two
gives a row a p-value, the share of training's out-of-fold values at least as large; the row's
new-kind score is Fisher's combination of the two, -log p_far - log p_unsure, high when the row
is both far and unsure and very high when it is very far, and training's rows get theirs the
same way (the score's null).

Two tests, combined by the Cauchy rule (valid under their dependence): a one-sided binomial test
of the rows past the distance cut, training's (1 - `NEW_KIND_NOMINAL`) quantile, which sees a
few rows very far (text of another kind; a linear classifier is often sure of those), and a
one-sided Mann-Whitney test of the window's new-kind scores against training's, which sees many
rows somewhat far and unsure (categories of the same kind of text). The share of new-kind
traffic is estimated from every row (Storey, 2002): on an unshifted window a share 1 - lambda of
the rows' p-values lies above lambda; the rows missing there are the new kind. Both the
distance's and the score's p-values give an estimate, each low when the new kind overlaps the
known classes; the larger is reported.
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
NEW_KIND_NOMINAL = 0.02  # share of an unshifted window flagged as a new kind, by construction
MIN_PER_CLASS = FOLDS  # a class with fewer training rows is left out of the reference
MONTE_CARLO_DRAWS = 2_000
MIN_EXPECTED = 5.0  # below this expected count in a cell, the chi-square p-value is simulated
Z_ONE_SIDED = 1.645  # 95% one-sided bound of an estimated change
STOREY_LAMBDA = 0.5  # p-values above this are counted as rows of the known kinds
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
    centres: np.ndarray  # (folds, K, d) class centres, whitened by the fold's shared covariance
    whiten: np.ndarray  # (folds, d, d): a row times this is in the fold's whitened space
    null: np.ndarray  # training's out-of-fold distances to the nearest class, sorted
    unsure_null: np.ndarray  # training's out-of-fold entropies of the class probabilities, sorted
    score_null: np.ndarray  # training's new-kind scores (see the module's note), sorted
    dist_cut: float  # a row further than this from every class is flagged
    nominal: float  # share of training flagged
    recall: float  # share of a class flagged when it is left out (mean over classes)
    source: str  # "embeddings" or "model run"
    coef: np.ndarray | None = None  # (folds, K, d) fold models, when fitted here
    intercept: np.ndarray | None = None  # (folds, K)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _folds(labels: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold  # lazily: the web process never loads it

    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    return [(fit, held) for fit, held in folds.split(np.zeros(len(labels)), labels)]


def _geometry(x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Class centres and a whitening matrix of the shared within-class covariance (Ledoit-Wolf
    shrinkage), centres already whitened: distances are then Euclidean."""
    from sklearn.covariance import ledoit_wolf  # lazily: the web process never loads it

    centres = np.stack([x[y == c].mean(axis=0) for c in range(n_classes)])
    covariance, _ = ledoit_wolf(x - centres[y], assume_centered=True)
    values, vectors = np.linalg.eigh(covariance)
    whiten = vectors / np.sqrt(np.clip(values, 1e-12 * values.max(), None))
    return centres @ whiten, whiten


def mahalanobis(rows: np.ndarray, centres: np.ndarray, whiten: np.ndarray) -> np.ndarray:
    """(n, K): each row's Mahalanobis distance to each class centre (see `_geometry`)."""
    z = rows @ whiten
    sq = (z**2).sum(axis=1)[:, None] + (centres**2).sum(axis=1)[None, :] - 2 * z @ centres.T
    return np.asarray(np.sqrt(np.clip(sq, 0.0, None)))


def entropy(probs: np.ndarray) -> np.ndarray:
    """Each row's entropy of its class probabilities (nats): high when the classifier is unsure."""
    p = np.clip(probs, 1e-12, 1.0)
    return np.asarray(-(p * np.log(p)).sum(axis=1))


def tail_share(null: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value's p-value against a sorted null: the share of the null at least as large, at
    least 1 / len(null) so that its logarithm is finite."""
    above = 1.0 - np.searchsorted(null, values, side="left") / len(null)
    return np.asarray(np.clip(above, 1.0 / len(null), 1.0))


def new_kind_scores(
    far_null: np.ndarray, unsure_null: np.ndarray, far: np.ndarray, unsure: np.ndarray
) -> np.ndarray:
    """Fisher's combination of a row's distance and entropy p-values: -log p_far - log p_unsure."""
    return np.asarray(-np.log(tail_share(far_null, far)) - np.log(tail_share(unsure_null, unsure)))


def _fold_of(n: int, seed: int) -> np.ndarray:
    """The fold model that scores each production row, drawn at random."""
    return np.random.default_rng(seed).integers(0, FOLDS, size=n)


def production_distances(
    ref: ClassReference, production_vectors: np.ndarray, *, seed: int = 0
) -> np.ndarray:
    """Each production row's distance to the nearest class, by one fold's geometry drawn at
    random (the same draw as `production_probabilities`)."""
    rows = neighbours._unit_rows(production_vectors).astype(np.float64)
    fold = _fold_of(len(rows), seed)
    out = np.empty(len(rows))
    for f in range(len(ref.whiten)):
        mine = fold == f
        if mine.any():
            out[mine] = mahalanobis(rows[mine], ref.centres[f], ref.whiten[f]).min(axis=1)
    return out


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
    folds = _folds(labels, seed)
    coef = intercept = None
    if train_probs is not None:
        probs = np.asarray(train_probs, dtype=np.float64)
        if probs.shape != (n_all, len(classes)):
            raise ValueError("training probabilities must be (rows, classes)")
        probs = probs[rows][:, [column[c] for c in kept]]
        probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
        source = "model run"
    else:
        probs, coef, intercept = _cross_validated(vectors, labels, n_classes, folds)
        source = "embeddings"
    predicted = probs.argmax(axis=1)
    prior = np.bincount(labels, minlength=n_classes) / len(labels)
    confusion = np.zeros((n_classes, n_classes))
    np.add.at(confusion, (predicted, labels), 1.0)
    confusion /= np.clip(confusion.sum(axis=0, keepdims=True), 1.0, None)

    # Far from every class: the geometry of each fold, training's distances out of fold.
    vectors64 = vectors.astype(np.float64)
    dist = np.zeros((len(labels), n_classes))
    centres = np.zeros((FOLDS, n_classes, vectors.shape[1]))
    whiten = np.zeros((FOLDS, vectors.shape[1], vectors.shape[1]))
    for f, (fit, held) in enumerate(folds):
        centres[f], whiten[f] = _geometry(vectors64[fit], labels[fit], n_classes)
        dist[held] = mahalanobis(vectors64[held], centres[f], whiten[f])
    near = dist.min(axis=1)
    unsure = entropy(probs)
    far_null, unsure_null = np.sort(near), np.sort(unsure)
    dist_cut = float(np.quantile(near, 1 - NEW_KIND_NOMINAL))
    nominal = float(np.mean(near > dist_cut))
    # A class left out: its rows' distance to the nearest other class. Classes of the same
    # kind of data sit close to each other, so this is the hard case (reported, not used).
    recall = np.mean(
        [
            np.mean(np.delete(dist[labels == c], c, axis=1).min(axis=1) > dist_cut)
            for c in range(n_classes)
        ]
    )
    return ClassReference(
        classes=kept,
        labels=labels,
        prior=prior,
        predicted=predicted,
        confusion=confusion,
        vectors=vectors,
        centres=centres,
        whiten=whiten,
        null=far_null,
        unsure_null=unsure_null,
        score_null=np.sort(new_kind_scores(far_null, unsure_null, near, unsure)),
        dist_cut=dist_cut,
        nominal=max(nominal, 1.0 / len(labels)),
        recall=float(recall),
        source=source,
        coef=coef,
        intercept=intercept,
    )


def _cross_validated(
    x: np.ndarray, y: np.ndarray, n_classes: int, folds: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold probabilities and the fold models' weights."""
    from sklearn.linear_model import LogisticRegression

    probs = np.zeros((len(x), n_classes))
    coef = np.zeros((FOLDS, n_classes, x.shape[1]))
    intercept = np.zeros((FOLDS, n_classes))
    for f, (fit, held) in enumerate(folds):
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
    fold = _fold_of(len(rows), seed)
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


def _storey(p_rows: np.ndarray, n_null: int) -> tuple[float, float]:
    """Storey's estimate of the share of rows not from the null, with its 95% upper bound: p-values
    above lambda are rows of the known kinds, a share 1 - lambda of them; the bound adds the
    window's and the null's sampling error."""
    above = float(np.mean(p_rows > STOREY_LAMBDA))
    estimated = float(np.clip(1.0 - above / (1 - STOREY_LAMBDA), 0.0, 1.0))
    variance = above * (1 - above) / len(p_rows) + STOREY_LAMBDA * (1 - STOREY_LAMBDA) / n_null
    upper = estimated + Z_ONE_SIDED * float(np.sqrt(variance)) / (1 - STOREY_LAMBDA)
    return estimated, float(min(1.0, upper))


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
    significant, examples; biggest change first), `new_kind` (share flagged, nominal, p_value
    and the two tests' tail_p_value and rank_p_value, estimated share of new-kind traffic with
    its 95% upper bound, examples: the flagged rows farthest first, score_examples: the rows of
    highest new-kind score, flags) and
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

    # New kind: past the distance cut, and far and unsure (see the module's note).
    near = production_distances(ref, prod, seed=seed)
    scores = new_kind_scores(ref.null, ref.unsure_null, near, entropy(probs))
    flags = near > ref.dist_cut
    n_flagged = int(np.count_nonzero(flags))
    share = n_flagged / n_p
    tail_p = float(stats.binomtest(n_flagged, n_p, ref.nominal, alternative="greater").pvalue)
    rank_p = float(stats.mannwhitneyu(scores, ref.score_null, alternative="greater").pvalue)
    new_p = neighbours.cauchy_combination([tail_p, rank_p])
    estimated, upper = max(
        _storey(tail_share(ref.null, near), len(ref.null)),
        _storey(tail_share(ref.score_null, scores), len(ref.score_null)),
    )
    flagged = np.flatnonzero(flags)
    flagged = flagged[np.argsort(-near[flagged], kind="stable")]  # farthest first
    # The rows that most resemble no class, by the score, for a window whose rank test fired.
    ranked = np.argsort(-scores, kind="stable")[:EXAMPLES]
    new_kind = {
        "share": share,
        "n_flagged": n_flagged,
        "nominal": ref.nominal,
        "p_value": new_p,
        "tail_p_value": tail_p,
        "rank_p_value": rank_p,
        "estimated_share": estimated,
        "upper": upper,
        "recall": ref.recall,
        "flags": flags,
        "examples": [keys[i] for i in flagged[:EXAMPLES].tolist()] if keys is not None else [],
        "score_examples": [keys[i] for i in ranked.tolist()] if keys is not None else [],
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
    if new_p < p_value_threshold and upper >= new_kind_threshold:
        crossed.append(
            {
                "signal": "new_kind",
                "value": estimated,
                "threshold": new_kind_threshold,
                "share": share,
                # which test says it more strongly: a few rows past the cut, or many far and unsure
                "test": "far" if tail_p <= rank_p else "far and unsure",
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
