"""Label-quality kernels: out-of-sample probabilities, confident learning, hardness, class overlap."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from workers.engine.neighbours import NeighbourIndex

# SciPy and scikit-learn are imported by the functions that use them: the web process imports
# this module for its constants, and should not pay for loading them.

UNLABELLED = -1

# PCA above this width: 128 components keep nearly all the class signal of sentence and image
# embeddings while making the kNN dot products and the logistic fits 3x cheaper at 384-d.
PCA_DIM = 128
# Below this width rows are treated as tabular features rather than embeddings.
NARROW_DIM = 32
KNN_K = 15
# Exact kNN costs n^2 dot products plus a per-row selection; above this many rows the engine's
# faiss HNSW graph (`NeighbourIndex`) keeps 100,000 rows to seconds.
EXACT_KNN_MAX = 20_000
LR_MAX_TRAIN = 25_000
LR_C = 10.0  # inverse regularisation strength of the logistic regressions
# Cleaning rounds after the first vote: refit without the flagged rows, then flag again.
CLEANING_ROUNDS = 2
# kNN shares of the mixture tried in each cleaning round; the kept rows' likelihood picks one.
MIX_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
# Shares of a given model's probabilities (a model run's) in the blend with the cross-validation
# tried in each cleaning round.
GIVEN_WEIGHTS = (0.0, 0.25, 0.5)
# Instance-dependent noise is trusted when the cleaned model disputes this many times the
# expected count of wrong labels, by its argmax and by the confident joint (see
# `_instance_dependent`).
ID_ARGMAX_RATIO = 1.8
ID_JOINT_RATIO = 1.5
# Pseudo-count added to every cell of the confident joint when it is the noise model of a
# suggested label: Jeffreys' prior for counts (see `suggested_label`).
SUGGESTION_PSEUDO_COUNT = 0.5
# Share of the neighbours' vote (flagged rows not voting) in the evidence a flagged row's
# suggested label is chosen from; the rest is the final probabilities.
SUGGESTION_KNN_SHARE = 0.25
# Rows the temperature and the mixture are fitted on, at most (a sample beyond that).
CALIBRATION_ROWS = 50_000

PRUNE_METHODS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_joint", "ensemble")
RANK_BY = ("self_confidence", "normalized_margin")


# --- out-of-sample probabilities ---------------------------------------------------------------


def out_of_sample_probs(
    features: np.ndarray, labels: np.ndarray, *, n_folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, str]:
    """Cross-validated class probabilities: logistic regression mixed with a cosine kNN vote,
    refitted without the rows found mislabelled (see `label_errors`).

    Rows labelled -1 are predicted by models fitted on every labelled row.
    """
    found = label_errors(features, labels, n_folds=n_folds, seed=seed)
    return found.probs, found.description


@dataclass
class LabelErrors:
    """What cross-validation found: probabilities, flags and each row's chance of a wrong label."""

    probs: np.ndarray
    issues: np.ndarray
    error_probability: np.ndarray  # P(given label is wrong | x); 0 for unlabelled rows
    description: str
    # Each row's neighbours' vote with the flagged rows not voting (None without neighbours).
    votes: np.ndarray | None = None
    # The last round found the noise instance-dependent (see `_instance_dependent`).
    instance_dependent: bool = False

    def suggested(self, labels: np.ndarray) -> np.ndarray:
        """`suggested_label` from what was found: the probabilities with the neighbours' vote,
        and the class-level noise model unless the noise looked instance-dependent."""
        return suggested_label(
            self.probs,
            labels,
            issues=self.issues & (np.asarray(labels) >= 0),
            votes=self.votes,
            noise_model=not self.instance_dependent,
        )


def label_errors(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_folds: int = 5,
    seed: int = 0,
    given: np.ndarray | None = None,
) -> LabelErrors:
    """Likely mislabelled rows from the features, and a model's out-of-sample probabilities
    when `given`, in one process (see `CrossValidation`)."""
    cv = CrossValidation(features, labels, n_folds=n_folds, seed=seed)
    parts = [cv.part(i) for i in range(cv.n_parts)]
    return cv.label_errors(
        {key: cv.combine([p[key] for p in parts]) for key in parts[0]}, given=given
    )


class CrossValidation:
    """Out-of-sample probabilities in independent parts (one per fold, one for the unlabelled
    rows), so that separate workers can compute them; `combine` puts the parts together.

    Everything a part needs is derived from the features, labels and seed alone, so any worker
    that builds this object from the same inputs computes the same part.
    """

    def __init__(
        self, features: np.ndarray, labels: np.ndarray, *, n_folds: int = 5, seed: int = 0
    ) -> None:
        self.labels = labels = np.asarray(labels, dtype=np.int64)
        self.seed = seed
        self.width = np.shape(features)[1]
        labelled = labels >= 0
        self.k = int(labels.max()) + 1 if labelled.any() else 1
        counts = np.bincount(labels[labelled], minlength=self.k)
        # Smoothed priors: a class seen once still gets some mass, an unseen class index stays tiny.
        self.prior = (counts + 1.0) / (counts.sum() + self.k)
        self.notes: list[str] = []
        self.parts: list[np.ndarray] = []  # rows each part predicts
        self.trivial = ""
        self._index: NeighbourIndex | None = None
        if labelled.sum() == 0:
            self.trivial = "class priors (no labelled rows)"
        elif len(np.flatnonzero(counts)) < 2:
            self.trivial = "class priors (only one class is labelled)"
        if self.trivial:
            return
        self.x = _prepare(np.asarray(features, dtype=np.float32), seed=seed)
        # Standardise after normalising: unit rows have tiny coordinates, and a default C would
        # then regularise almost everything away.
        from sklearn.preprocessing import StandardScaler

        self.z = StandardScaler().fit_transform(self.x).astype(np.float32)
        self.labelled = np.flatnonzero(labelled)
        self._plan_folds(n_folds)
        unlabelled = np.flatnonzero(~labelled)
        if len(unlabelled):
            self.parts.append(unlabelled)
        neighbours = min(KNN_K, len(self.labelled) - 1)
        self.neighbours = neighbours
        self.notes.append(
            f"cosine kNN vote (k={neighbours}, leave-one-out)"
            if neighbours >= 1
            else "kNN skipped (one labelled row)"
        )
        self.notes.append(f"refitted {CLEANING_ROUNDS}x without the rows flagged")

    def _plan_folds(self, n_folds: int) -> None:
        from sklearn.model_selection import KFold, StratifiedKFold

        y = self.labels[self.labelled]
        present = np.bincount(y)
        min_count = int(present[present > 0].min())
        folds = min(n_folds, len(y))
        if folds < 2:
            self.notes.append("logistic regression fitted without cross-validation (too few rows)")
            self.parts.append(self.labelled)
            self.train = [self.labelled]
            return
        if min_count >= folds:
            splitter, kind = (
                StratifiedKFold(folds, shuffle=True, random_state=self.seed),
                "stratified",
            )
        elif min_count >= 2:
            folds = min_count
            splitter, kind = (
                StratifiedKFold(folds, shuffle=True, random_state=self.seed),
                "stratified",
            )
        else:
            # A class with a single sample cannot be stratified; plain folds leave it out of its
            # own training fold, which is the honest answer (it gets the prior of the others).
            splitter, kind = KFold(folds, shuffle=True, random_state=self.seed), "unstratified"
        self.train = []
        for train, test in splitter.split(self.labelled, y):
            self.parts.append(self.labelled[test])
            self.train.append(self.labelled[train])
        self.notes.append(f"logistic regression, {folds}-fold {kind} cross-validation")

    @property
    def n_parts(self) -> int:
        return 1 if self.trivial else len(self.parts)

    def part(self, i: int) -> dict[str, np.ndarray]:
        """Part i's rows (a fold's held-out rows, or the unlabelled): the logistic regression's
        probabilities, the kNN vote, and the neighbours behind the vote (row numbers and
        weights), which the cleaning rounds vote with again without searching."""
        if self.trivial:
            prior = np.tile(self.prior, (len(self.labels), 1))
            empty = np.zeros((len(self.labels), 0))
            return {"lr": prior, "knn": prior, "neighbours": empty, "weights": empty}
        rows = self.parts[i]
        lr = self._logistic(i, np.zeros(len(self.labels), dtype=bool))
        neighbours, weights = knn_neighbours(self.x, self.labels, rows, index=self.index)
        knn = neighbour_vote(self.labels, neighbours, weights, prior=self.prior)
        return {"lr": lr, "knn": knn, "neighbours": neighbours, "weights": weights}

    @property
    def index(self) -> NeighbourIndex:
        """The kNN vote's index over the prepared features, built once for every part."""
        if self._index is None:
            self._index = label_index(self.x)
        return self._index

    def _logistic(self, i: int, leave_out: np.ndarray) -> np.ndarray:
        """Part i's rows predicted by a logistic regression fitted on its training rows, less
        those in `leave_out`."""
        train = self.train[i] if i < len(self.train) else self.labelled
        if (~leave_out[train]).any():
            train = train[~leave_out[train]]
        return _fit_predict(self.z[train], self.labels[train], self.z[self.parts[i]], k=self.k)

    def combine(self, parts: list[np.ndarray]) -> np.ndarray:
        """The parts' arrays (probabilities, kNN votes, neighbours) as one, in row order."""
        if self.trivial:
            return parts[0]
        first = np.asarray(parts[0])
        out = np.zeros((len(self.labels), *first.shape[1:]), dtype=first.dtype)
        for rows, values in zip(self.parts, parts, strict=True):
            out[rows] = values
        return out

    def label_errors(
        self,
        first: dict[str, np.ndarray],
        *,
        rounds: int = CLEANING_ROUNDS,
        given: np.ndarray | None = None,
    ) -> LabelErrors:
        """Flag likely mislabelled rows from the combined parts, then clean and flag again.

        Round one: confident learning's ensemble vote (`find_label_issues(method="ensemble")`)
        on the mixture of logistic regression and kNN vote, and the calibrated confident joint
        C[given, true] as the noise model. Each cleaning round then refits every fold's
        logistic regression without the flagged rows and lets the kNN vote ignore them, so the
        models learn the classes rather than the noise; picks the kNN share and a temperature
        that best predict the kept rows; computes each row's probability that its given label
        is wrong, P(y != given | x, given) from p(y | x) and C (Bayes' rule); and flags the set
        with the largest expected F1.

        `given`: another model's out-of-sample probabilities (a model run's), one row per
        label. They cannot be refitted without the flagged rows, but they join every mixture:
        round one votes on the calibrated blend of theirs and the cross-validation's, and each
        cleaning round also picks the given model's share by the kept rows' likelihood.
        """
        labels = self.labels
        n = len(labels)
        if given is not None:
            given = _given_probs(given, labels)
        if self.trivial:
            probs = first["lr"] if given is None else given
            return LabelErrors(probs, np.zeros(n, bool), np.zeros(n), self.description)
        lr, knn = first["lr"], first["knn"]
        if given is not None:
            lr, knn = _widen(lr, given.shape[1]), _widen(knn, given.shape[1])
        probs = _mixture(lr, knn, _knn_weight(self.width))
        issues = find_label_issues(probs, labels, method="ensemble", knn_votes=knn)
        joint, _ = confident_joint(probs, labels)
        if given is not None:
            # The noise model: of the two confident joints, the one that counts more rows off
            # its diagonal. A model run fitted elsewhere sees noise that follows the classes'
            # confusion, which the cross-validation's sharper probabilities explain away; one
            # that learnt its training labels by heart sees none, and the cross-validation's
            # joint stands.
            theirs, _ = confident_joint(given, labels)
            if theirs.sum() - np.trace(theirs) > joint.sum() - np.trace(joint):
                joint = theirs
        wrong = np.zeros(n)
        instance_dependent = False
        rng = np.random.default_rng(self.seed)
        for round_ in range(rounds):
            lr = self.combine([self._logistic(i, issues) for i in range(len(self.parts))])
            knn = neighbour_vote(
                labels, first["neighbours"], first["weights"], prior=self.prior, ignore=issues
            )
            kept = np.flatnonzero((labels >= 0) & ~issues)
            if len(kept) > CALIBRATION_ROWS:
                kept = np.sort(rng.choice(kept, CALIBRATION_ROWS, replace=False))
            candidates = [_mixture(lr, knn, w) for w in MIX_WEIGHTS]
            if given is not None:
                candidates = [
                    _blend(_widen(c, given.shape[1]), given, g)
                    for c in candidates
                    for g in GIVEN_WEIGHTS
                ]
            probs = _best_calibrated(candidates, labels, kept)
            wrong = posterior_mislabelled(probs, labels, joint)
            flags = max_expected_f1(wrong)
            if given is not None:
                flags = _at_least(flags, wrong, _noise_count(probs, labels))
            if round_ == rounds - 1:
                # Only once the fits have been cleaned: grown earlier, the extra flags would
                # leave out rows the next round's fit needs, and its counts would drift.
                instance_dependent = _looks_instance_dependent(wrong, probs, labels)
                if instance_dependent:
                    flags = _instance_dependent(flags, wrong, probs, labels)
            issues = _keep_every_class(flags, labels, wrong)
        votes = None
        if first["neighbours"].shape[1]:
            votes = neighbour_vote(
                labels, first["neighbours"], first["weights"], prior=self.prior, ignore=issues
            )
        return LabelErrors(
            probs,
            issues,
            wrong,
            self.description,
            votes=votes,
            instance_dependent=instance_dependent,
        )

    @property
    def description(self) -> str:
        return self.trivial or "; ".join(self.notes)


def _given_probs(given: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A model's probabilities checked against the labels, rows renormalised."""
    probs, labels, _ = _checked(given, labels)
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("given probabilities must be finite and non-negative")
    total = probs.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise ValueError("every row of the given probabilities needs some mass")
    return np.asarray(probs / total)


def _widen(probs: np.ndarray, k: int) -> np.ndarray:
    """Probabilities over the first classes padded to k columns (classes no label carries)."""
    if probs.shape[1] >= k:
        return probs
    return np.pad(probs, ((0, 0), (0, k - probs.shape[1])))


def _blend(own: np.ndarray, given: np.ndarray, g: float) -> np.ndarray:
    """Linear blend of two probability tables, g the given model's share."""
    return _mixture(own, given, g)


def _mixture(lr: np.ndarray, knn: np.ndarray, w: float) -> np.ndarray:
    probs: np.ndarray = (1.0 - w) * lr + w * knn
    return np.asarray(probs / probs.sum(axis=1, keepdims=True))


def _best_calibrated(
    candidates: list[np.ndarray], labels: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Of the candidate probabilities, each temperature-scaled to fit `rows`' labels, the one
    whose labels are the likeliest (the lowest negative log-likelihood)."""
    best, best_loss = candidates[0], np.inf
    for probs in candidates:
        scaled, loss = temperature_scaled(probs, labels, rows)
        if loss < best_loss:
            best, best_loss = scaled, loss
    return best


def temperature_scaled(
    probs: np.ndarray, labels: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, float]:
    """Probabilities sharpened or softened by one exponent t (p^t, renormalised) fitted to
    maximise the likelihood of `rows`' labels (Guo et al. 2017), and that fit's mean negative
    log-likelihood."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax, softmax

    logs = np.log(np.clip(probs, 1e-12, 1.0))
    fit, given = logs[rows], labels[rows]

    def loss(t: float) -> float:
        if not len(rows):
            return 0.0
        return float(-log_softmax(fit * t, axis=1)[np.arange(len(rows)), given].mean())

    t = minimize_scalar(loss, bounds=(0.25, 8.0), method="bounded").x if len(rows) else 1.0
    return softmax(logs * t, axis=1), loss(t)


def posterior_mislabelled(probs: np.ndarray, labels: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """P(true class != given | x, given) by Bayes' rule, for clean-label probabilities p(y | x)
    and the noise model of a confident joint C[given, true]: P(y = j | x, given) is
    proportional to P(given | y = j) p(j | x), with P(given | y = j) = C[given, j] / sum_i C[i, j].
    A class nothing was counted into keeps its own label. Unlabelled rows get 0.
    """
    probs, labels, k = _checked(probs, labels)
    column = joint.sum(axis=0, keepdims=True)
    noise = np.where(column > 0, joint / np.maximum(column, 1e-12), np.eye(k))
    given = np.maximum(labels, 0)
    likelihood = noise[given] * probs
    total = likelihood.sum(axis=1)
    right = np.divide(
        likelihood[np.arange(len(labels)), given], total, out=np.ones(len(labels)), where=total > 0
    )
    return np.where(labels >= 0, 1.0 - right, 0.0)


def _noise_count(probs: np.ndarray, labels: np.ndarray) -> float:
    """Rows the confident joint of `probs` counts off its diagonal: confident learning's
    estimate of how many labels are wrong."""
    joint, _ = confident_joint(probs, labels)
    return float(joint.sum() - np.trace(joint))


def _at_least(flags: np.ndarray, wrong: np.ndarray, estimate: float) -> np.ndarray:
    """`flags` grown, in order of `wrong`, to halfway towards `estimate` rows when it has fewer.

    Noise that follows the classes' real confusion (an annotator's slips towards the plausible
    class) looks clean to a model fitted on it, so the rows' error probabilities sum to too
    few; the confident joint's count errs the other way on uniform noise. Halfway between the
    two loses little on either.
    """
    target = int(round((flags.sum() + estimate) / 2.0))
    if target <= flags.sum():
        return flags
    grown = flags.copy()
    grown[np.argsort(-wrong, kind="stable")[:target]] = True
    return grown


def _instance_dependent(
    flags: np.ndarray, wrong: np.ndarray, probs: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """`flags` grown, in order of `wrong`, to the count of labels the cleaned model disputes when
    the noise looks instance-dependent.

    Labels slipped to the class a row plausibly belongs to look right to a model fitted on them:
    the rows' error probabilities sum to far fewer than the labels that are wrong. The cleaned
    model still disputes them, though: both the rows whose label is not its argmax and the
    confident joint's off-diagonal count then exceed the expected count (the sum of `wrong`) by
    margins that noise independent of the rows did not reach in the benchmarks (uniform and
    class-conditional flips kept the argmax count under 2.3 times the expected count and the
    confident joint under 1.5 times, the latter on a set with much natural class overlap). Then
    the larger of the two counts is flagged.
    """
    labelled = labels >= 0
    if not _looks_instance_dependent(wrong, probs, labels):
        return flags
    disputed = int((labelled & (np.argmax(probs, axis=1) != np.maximum(labels, 0))).sum())
    target = int(round(max(disputed, _noise_count(probs, labels))))
    if target <= flags.sum():
        return flags
    grown = flags.copy()
    grown[np.argsort(-wrong, kind="stable")[:target]] = True
    return grown & labelled


def _looks_instance_dependent(wrong: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> bool:
    """The cleaned model disputes far more labels, by its argmax and by its confident joint,
    than the rows' error probabilities expect (see `_instance_dependent`)."""
    expected = float(wrong.sum())
    labelled = labels >= 0
    disputed = int((labelled & (np.argmax(probs, axis=1) != np.maximum(labels, 0))).sum())
    joint = _noise_count(probs, labels)
    return disputed > ID_ARGMAX_RATIO * expected and joint > ID_JOINT_RATIO * expected + 2.0


def _keep_every_class(issues: np.ndarray, labels: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    """Never flag every sample of a class (of two or more): the one least likely wrong keeps
    its label, as in `_prune_by_noise_rate`."""
    issues = issues.copy()
    for given in np.unique(labels[labels >= 0]):
        rows = np.flatnonzero(labels == given)
        if len(rows) > 1 and issues[rows].all():
            issues[rows[np.argmin(wrong[rows])]] = False
    return issues


def max_expected_f1(error_probability: np.ndarray) -> np.ndarray:
    """The rows to flag, given each row's probability of being an error: the m most probable,
    with m maximising the expected F1, approximated as 2 * sum of the m probabilities /
    (m + sum of all probabilities) (Lipton, Elkan & Naryanaswamy 2014, plug-in rule)."""
    p = np.asarray(error_probability, dtype=float)
    flags = np.zeros(len(p), dtype=bool)
    if not len(p) or p.sum() <= 0:
        return flags
    order = np.argsort(-p, kind="stable")
    expected = 2.0 * np.cumsum(p[order]) / (np.arange(1, len(p) + 1) + p.sum())
    flags[order[: int(np.argmax(expected)) + 1]] = True
    return flags


def _knn_weight(width: int) -> float:
    """Share of the kNN vote in the mixture: 0.5 for embeddings, down to 0.25 for few columns.

    On a handful of tabular columns the linear model is close to well specified, while a
    neighbourhood vote over few standardised columns mixes in the adjacent class (and, under
    class-conditional noise, that class's flipped rows), so it is trusted less.
    """
    return 0.25 + 0.25 * min(1.0, width / NARROW_DIM)


def _prepare(x: np.ndarray, *, seed: int) -> np.ndarray:
    """Rows scaled to about unit length, so that squared distances stay on one scale.

    Wide inputs (embeddings) compare by angle: unit rows, PCA when wider than PCA_DIM, unit rows
    again. Narrow inputs (a few tabular columns) would lose a real share of their information to
    row normalisation, so they are standardised and divided by sqrt(d) instead.
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    x = np.nan_to_num(x)
    d = x.shape[1]
    if d < NARROW_DIM:
        z: np.ndarray = StandardScaler().fit_transform(x) / math.sqrt(max(d, 1))
        return z.astype(np.float32)
    x = _unit_rows(x)
    if d > PCA_DIM and x.shape[0] > PCA_DIM:
        # Fit on a sample: the components of 20,000 rows are as good as those of 100,000.
        rng = np.random.default_rng(seed)
        fit_rows = x[rng.choice(len(x), size=min(len(x), 20_000), replace=False)]
        pca = PCA(n_components=PCA_DIM, random_state=seed).fit(fit_rows)
        x = _unit_rows(pca.transform(x).astype(np.float32))
    return x


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def _fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, k: int
) -> np.ndarray:
    classes = np.unique(y_train)
    out = np.full((len(x_test), k), 1e-6)
    if len(classes) == 1:
        out[:, classes[0]] = 1.0
    else:
        if len(x_train) > LR_MAX_TRAIN:
            # A linear model over <=128 dims is saturated long before this many rows; the cap
            # keeps 100,000 rows x 5 folds within the time budget.
            keep = np.random.default_rng(0).choice(len(x_train), LR_MAX_TRAIN, replace=False)
            # ...but every class keeps at least one row, so a rare class is still a column.
            keep = np.union1d(keep, np.unique(y_train, return_index=True)[1])
            x_train, y_train = x_train[keep], y_train[keep]
        # Fitted to convergence (a loose tolerance stopped lbfgs after a handful of steps, with
        # probabilities too soft to tell a flipped label from a hard one), and lightly
        # regularised: the cleaning rounds, not the penalty, keep the noise out of the fit.
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=LR_C, max_iter=1000, tol=1e-4)
        model.fit(x_train, y_train)
        out[:, model.classes_] = model.predict_proba(x_test)
    return np.asarray(out / out.sum(axis=1, keepdims=True))


def label_index(x: np.ndarray) -> NeighbourIndex:
    """The neighbour index the kNN vote searches: Euclidean over the prepared features (cosine
    order for unit rows), exact up to EXACT_KNN_MAX rows and a faiss HNSW graph above."""
    return NeighbourIndex(x, metric="l2", exact_below=EXACT_KNN_MAX)


def knn_neighbours(
    x: np.ndarray, labels: np.ndarray, rows: np.ndarray, *, index: NeighbourIndex | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`rows`' nearest labelled rows in prepared features `x` (searched in `index`, built from
    `x` when not given), leave one out (a row is never its own neighbour): their row numbers and
    vote weights, (len(rows), KNN_K) each."""
    labelled = labels >= 0
    neighbours = min(KNN_K, int(labelled.sum()) - 1)
    if neighbours < 1:
        return np.zeros((len(rows), 0), dtype=np.int64), np.zeros((len(rows), 0), np.float32)
    if index is None:
        index = label_index(x)
    idx, score = index.neighbours(rows, neighbours, within=None if labelled.all() else labelled)
    # Inverse distance (1 - cosine for unit rows): close neighbours dominate, and near-duplicates
    # do not swamp the rest because the weight is capped. A slot the graph left unfilled (-1)
    # points at row 0 with no weight.
    weights = np.where(idx >= 0, 1.0 / np.clip(-score / 2.0, 0.05, None), 0.0)
    return np.maximum(idx, 0), weights.astype(np.float32)


def neighbour_vote(
    labels: np.ndarray,
    neighbours: np.ndarray,
    weights: np.ndarray,
    *,
    prior: np.ndarray,
    ignore: np.ndarray | None = None,
) -> np.ndarray:
    """Class probabilities from the weighted labels of each row's neighbours (row numbers into
    `labels`); neighbours marked in `ignore` do not vote."""
    k = len(prior)
    if neighbours.shape[1] == 0:
        return np.tile(prior, (len(neighbours), 1))
    if ignore is not None:
        weights = np.where(ignore[neighbours], 0.0, weights)
    out = np.zeros((len(neighbours), k))
    at = np.repeat(np.arange(len(neighbours)), neighbours.shape[1])
    np.add.at(out, (at, labels[neighbours].ravel()), weights.ravel())
    # A pseudo-count of one neighbour spread by the prior keeps probabilities off 0 and 1 (and
    # is the whole answer when every neighbour is ignored).
    mean = weights.mean(axis=1, keepdims=True)
    out += prior * np.where(mean > 0, mean, 1.0)
    return np.asarray(out / out.sum(axis=1, keepdims=True))


# --- confident learning --------------------------------------------------------------------------


def per_class_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean self-confidence of each class: t_j = mean of p(j | x) over rows labelled j."""
    probs, labels, k = _checked(probs, labels)
    labelled = labels >= 0
    sums = np.bincount(labels[labelled], weights=probs[labelled, labels[labelled]], minlength=k)
    counts = np.bincount(labels[labelled], minlength=k)
    # A class nobody carries gets an unreachable threshold, so nothing is counted into it.
    return np.where(counts > 0, sums / np.maximum(counts, 1), 1.0 + 1e-6)


def confident_joint(
    probs: np.ndarray, labels: np.ndarray, *, calibrate: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Confident joint C[given, true] and, per row, its confident true class (-1 when none).

    A row counts towards true class j when p(j|x) >= t_j; of several such classes, the most
    probable wins. Calibration rescales each given-label row to that label's count, and the whole
    matrix to the number of labelled rows (Northcutt et al. 2021, eq. 2-3).
    """
    probs, labels, k = _checked(probs, labels)
    thresholds = per_class_thresholds(probs, labels)
    above = probs >= thresholds[None, :] - 1e-12
    masked = np.where(above, probs, -np.inf)
    true = np.argmax(masked, axis=1)
    true[~above.any(axis=1)] = -1
    true[labels < 0] = -1
    counted = true >= 0
    joint = np.zeros((k, k))
    np.add.at(joint, (labels[counted], true[counted]), 1.0)
    if calibrate:
        counts = np.bincount(labels[labels >= 0], minlength=k).astype(float)
        row_sums = joint.sum(axis=1)
        joint = joint * (counts / np.maximum(row_sums, 1e-12))[:, None]
        total = joint.sum()
        if total > 0:
            joint = joint * (counts.sum() / total)
    return joint, true


def find_label_issues(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    method: str = "prune_by_noise_rate",
    features: np.ndarray | None = None,
    knn_votes: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of likely mislabelled rows by confident learning.

    Methods: `prune_by_noise_rate` (default; per off-diagonal cell of the calibrated confident
    joint, remove that many rows of the given class with the largest margin p_true - p_given),
    `prune_by_class` (per class, its estimated noisy count with the lowest self-confidence),
    `both` (their intersection), `confident_joint` (off-diagonal membership), and `ensemble`.

    `ensemble` is a vote of three: prune-by-noise-rate, prune-by-class and the confident-joint
    off-diagonal, plus — when `features` are given — disagreement of the row's label with its
    cosine kNN neighbourhood. A row is flagged when a majority of the votes cast agree.
    `knn_votes` (the kNN vote of `CrossValidation`, computed from the same features) saves
    computing that neighbourhood again.
    """
    if method not in PRUNE_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {PRUNE_METHODS}")
    probs, labels, k = _checked(probs, labels)
    joint, true = confident_joint(probs, labels)
    off: np.ndarray = (true >= 0) & (true != labels) & (labels >= 0)
    if method == "confident_joint":
        return off
    by_noise = _prune_by_noise_rate(probs, labels, joint)
    by_class = _prune_by_class(probs, labels, joint)
    if method == "prune_by_noise_rate":
        return by_noise
    if method == "prune_by_class":
        return by_class
    if method == "both":
        return np.asarray(by_noise & by_class)
    votes = [by_noise, by_class, off]
    if knn_votes is not None:
        votes.append((labels >= 0) & (np.argmax(knn_votes, axis=1) != labels))
    elif features is not None:
        votes.append(_knn_disagrees(features, labels))
    tally = np.sum(votes, axis=0)
    return np.asarray(tally * 2 > len(votes))


def _prune_by_noise_rate(probs: np.ndarray, labels: np.ndarray, joint: np.ndarray) -> np.ndarray:
    k = probs.shape[1]
    issues = np.zeros(len(labels), dtype=bool)
    for given in range(k):
        rows = np.flatnonzero(labels == given)
        if not len(rows):
            continue
        budget = max(0, len(rows) - 1)
        for true in range(k):
            if true == given:
                continue
            n_remove = min(int(round(joint[given, true])), budget)
            if n_remove <= 0:
                continue
            margin = probs[rows, true] - probs[rows, given]
            order = np.argsort(-margin, kind="stable")[:n_remove]
            issues[rows[order]] = True
        if len(rows) > 1 and issues[rows].all():
            # Never empty a class: the cells of its row together took every row, so the most
            # self-confident one keeps its label.
            issues[rows[np.argmax(probs[rows, given])]] = False
    return issues


def _prune_by_class(probs: np.ndarray, labels: np.ndarray, joint: np.ndarray) -> np.ndarray:
    k = probs.shape[1]
    issues = np.zeros(len(labels), dtype=bool)
    for given in range(k):
        rows = np.flatnonzero(labels == given)
        if not len(rows):
            continue
        n_remove = min(int(round(joint[given].sum() - joint[given, given])), len(rows) - 1)
        if n_remove <= 0:
            continue
        order = np.argsort(probs[rows, given], kind="stable")[:n_remove]
        issues[rows[order]] = True
    return issues


def _knn_disagrees(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows whose label is not the weighted majority of their cosine neighbours.

    No fixed agreement floor: with heavy class-conditional noise a flipped row's neighbours carry
    its wrong label too, so a floor such as "under a fifth" silences this vote exactly when it is
    needed. The other three votes supply the precision.
    """
    x = _prepare(np.asarray(features, dtype=np.float32), seed=0)
    k = int(labels.max()) + 1
    counts = np.bincount(labels[labels >= 0], minlength=k)
    prior = (counts + 1.0) / (counts.sum() + k)
    neighbours, weights = knn_neighbours(x, labels, np.arange(len(labels)))
    knn = neighbour_vote(labels, neighbours, weights, prior=prior)
    return np.asarray((labels >= 0) & (np.argmax(knn, axis=1) != labels))


def rank_label_issues(
    probs: np.ndarray, labels: np.ndarray, *, rank_by: str = "self_confidence"
) -> np.ndarray:
    """Quality score per row, lower = more likely mislabelled: self-confidence or normalized margin."""
    if rank_by not in RANK_BY:
        raise ValueError(f"unknown rank_by {rank_by!r}; choose one of {RANK_BY}")
    probs, labels, _ = _checked(probs, labels)
    given = np.maximum(labels, 0)
    self_conf: np.ndarray = probs[np.arange(len(labels)), given]
    if rank_by == "self_confidence":
        return self_conf
    others = probs.copy()
    others[np.arange(len(labels)), given] = -np.inf
    # (p_given - max p_other + 1) / 2 maps the margin from [-1, 1] to [0, 1].
    return np.asarray((self_conf - others.max(axis=1) + 1.0) / 2.0)


def suggested_label(
    probs: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    issues: np.ndarray | None = None,
    votes: np.ndarray | None = None,
    noise_model: bool = True,
) -> np.ndarray:
    """The label to propose: the confident-joint true class when there is one, else the argmax.

    A row flagged in `issues` is never proposed its own label: it gets the other class most
    likely to be its true one given both x and the label it carries, P(y = j | x, given) by
    Bayes' rule with the calibrated confident joint as the noise model (as in
    `posterior_mislabelled`). A label slips to the classes it is confused with, so the noise
    model knows where a wrong "politics" most often came from. The joint is counted from rows,
    so every cell first gets half a row (Jeffreys' prior, Dirichlet(1/2)): a slip that was never
    counted is unlikely rather than impossible, and the probabilities can still propose it.

    `votes`, each row's neighbours' vote with the flagged rows not voting (`LabelErrors.votes`),
    joins the probabilities as a quarter of the evidence: a flagged row's clean neighbours say
    which class it sits among. `noise_model=False` leaves the noise model out, for noise that
    follows the rows rather than the classes (`LabelErrors.instance_dependent`): a slip towards
    the class a row resembles is already in the row's probabilities, and the class-level counts
    of such slips would pull the suggestion away from it.
    """
    probs = np.asarray(probs, dtype=float)
    suggestion: np.ndarray = np.argmax(probs, axis=1)
    if labels is None:
        return suggestion
    _, true = confident_joint(probs, labels, calibrate=False)
    suggestion = np.where(true >= 0, true, suggestion)
    if issues is not None and probs.shape[1] > 1:
        flagged = np.flatnonzero(issues & (labels >= 0))
        evidence = probs[flagged]
        if votes is not None:
            neighbours = _widen(np.asarray(votes, dtype=float), probs.shape[1])[flagged]
            evidence = (1.0 - SUGGESTION_KNN_SHARE) * evidence + SUGGESTION_KNN_SHARE * neighbours
        posterior = evidence.copy()
        if noise_model:
            joint, _ = confident_joint(probs, labels)
            joint = joint + SUGGESTION_PSEUDO_COUNT
            column = joint.sum(axis=0, keepdims=True)
            noise = np.where(column > 0, joint / np.maximum(column, 1e-12), np.eye(probs.shape[1]))
            posterior = noise[labels[flagged]] * evidence
            # Where the noise model gives no other class any mass, the evidence alone decides.
            empty = posterior.sum(axis=1) - posterior[np.arange(len(flagged)), labels[flagged]] <= 0
            posterior[empty] = evidence[empty]
        posterior[np.arange(len(flagged)), labels[flagged]] = -np.inf
        suggestion[flagged] = np.argmax(posterior, axis=1)
    return suggestion


# --- error potential -----------------------------------------------------------------------------


def doubt(self_confidence: np.ndarray) -> np.ndarray:
    """How likely a label is wrong, in [0, 1): L / (1 + L) with L = -ln(self-confidence).

    Ranks rows exactly as 1 - self-confidence does and is close to it for confident rows
    (about 1 - p when p is near 1), but keeps resolution where calibrated probabilities
    saturate: a flagged row's self-confidence of 1e-20 and one of 1e-10 both make
    1 - p = 1.000, yet score 0.979 and 0.958. Self-confidence 0 scores 1.
    """
    p = np.clip(np.asarray(self_confidence, dtype=float), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        surprise = -np.log(p)
        score = surprise / (1.0 + surprise)
    return np.asarray(np.where(p > 0, score, 1.0), dtype=float)


def error_potential(
    probs: np.ndarray, labels: np.ndarray, *, epoch_probs: np.ndarray | None = None
) -> np.ndarray:
    """Hardness in [0, 1]: mean of low self-confidence (as `doubt`) and small margin, plus
    training dynamics.

    With per-epoch probabilities (E, n, k) it also averages in the area under the margin
    (Pleiss et al. 2020: mean over epochs of p_given - max p_other) and dataset cartography
    (Swayamdipta et al. 2020): low mean confidence, and variability across epochs.
    Unlabelled rows are scored against their predicted class.
    """
    probs, labels, _ = _checked(probs, labels)
    given = np.where(labels >= 0, labels, np.argmax(probs, axis=1))
    # Self-confidence on `doubt`'s log scale, so that rows whose probabilities saturate still
    # rank by how far below zero their label's log-probability fell.
    parts = [doubt(_given_prob(probs, given)), (1.0 - _margin(probs, given)) / 2.0]
    if epoch_probs is not None:
        epochs = np.asarray(epoch_probs, dtype=float)
        if epochs.ndim != 3 or epochs.shape[1:] != probs.shape:
            raise ValueError("epoch_probs must have shape (epochs, n, classes)")
        margins = np.stack([_margin(p, given) for p in epochs])
        confidence = np.stack([_given_prob(p, given) for p in epochs])
        parts.append((1.0 - margins.mean(axis=0)) / 2.0)  # AUM
        parts.append(1.0 - confidence.mean(axis=0))
        # The std of a [0, 1] quantity is at most 0.5, hence the doubling.
        parts.append(np.clip(2.0 * confidence.std(axis=0), 0.0, 1.0))
    return np.asarray(np.clip(np.mean(parts, axis=0), 0.0, 1.0))


def _given_prob(probs: np.ndarray, given: np.ndarray) -> np.ndarray:
    return np.asarray(probs[np.arange(len(given)), given])


def _margin(probs: np.ndarray, given: np.ndarray) -> np.ndarray:
    others = probs.copy()
    others[np.arange(len(given)), given] = -np.inf
    return np.asarray(_given_prob(probs, given) - others.max(axis=1))


# --- class overlap and noise ---------------------------------------------------------------------


def class_overlap(probs: np.ndarray, labels: np.ndarray, *, top: int = 10) -> dict[str, Any]:
    """Confusion matrix (given x predicted), confident joint, and the most confused class pairs.

    A pair's overlap is the symmetric off-diagonal mass of the calibrated confident joint,
    (C[a, b] + C[b, a]) / n, so it reads as the share of rows caught between the two classes.
    """
    probs, labels, k = _checked(probs, labels)
    labelled = labels >= 0
    predicted = np.argmax(probs, axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels[labelled], predicted[labelled]), 1)
    joint, _ = confident_joint(probs, labels)
    n = max(int(labelled.sum()), 1)
    pairs: list[dict[str, Any]] = []
    for a in range(k):
        for b in range(a + 1, k):
            mass = (joint[a, b] + joint[b, a]) / n
            if mass > 0:
                pairs.append({"classes": (a, b), "overlap": float(mass)})
    pairs.sort(key=lambda p: -float(p["overlap"]))
    return {"confusion": confusion, "confident_joint": joint, "pairs": pairs[:top]}


def label_noise_estimate(
    is_issue: np.ndarray, *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Estimated noise rate with its Wilson score interval: (rate, low, high)."""
    flags = np.asarray(is_issue, dtype=bool)
    n = len(flags)
    if n == 0:
        return 0.0, 0.0, 1.0
    p = float(flags.mean())
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def _checked(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError("probs must be (n, classes) with one label per row")
    if labels.max(initial=-1) >= probs.shape[1]:
        raise ValueError("a label is outside the probability columns")
    return probs, labels, probs.shape[1]
