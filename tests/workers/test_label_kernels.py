"""Label-quality kernels on constructed data whose answers are known."""

import numpy as np
import pytest

from workers.engine.labels import (
    class_overlap,
    confident_joint,
    doubt,
    error_potential,
    find_label_issues,
    knn_neighbours,
    label_errors,
    label_noise_estimate,
    out_of_sample_probs,
    per_class_thresholds,
    rank_label_issues,
    suggested_label,
)


def blobs(n_per_class=150, k=4, d=48, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 4.0
    y = np.repeat(np.arange(k), n_per_class)
    x = centres[y] + rng.standard_normal((len(y), d))
    return x, y


def flip(y, *, rate, seed=0):
    rng = np.random.default_rng(seed)
    k = y.max() + 1
    noisy = y.copy()
    idx = rng.choice(len(y), size=int(rate * len(y)), replace=False)
    noisy[idx] = (y[idx] + rng.integers(1, k, size=len(idx))) % k
    return noisy, noisy != y


# Hand-computed: class 0 self-confidences 0.9, 0.7, 0.2 → t0 = 0.6; class 1: 0.8, 0.6 → t1 = 0.7.
TINY_PROBS = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.2, 0.8], [0.4, 0.6]])
TINY_LABELS = np.array([0, 0, 0, 1, 1])


def test_thresholds_are_the_mean_self_confidence_per_class():
    assert per_class_thresholds(TINY_PROBS, TINY_LABELS) == pytest.approx([0.6, 0.7])


def test_confident_joint_on_a_hand_computed_example():
    # Row 2 (given 0) has p1 = 0.8 >= 0.7 → counted as true 1; row 4 (given 1) clears neither
    # threshold (0.4 < 0.6, 0.6 < 0.7) and is not counted.
    joint, true = confident_joint(TINY_PROBS, TINY_LABELS, calibrate=False)
    assert joint.tolist() == [[2.0, 1.0], [0.0, 1.0]]
    assert true.tolist() == [0, 0, 1, 1, -1]
    # Calibrated: each given-label row sums to that label's count (3 and 2), total n = 5.
    calibrated, _ = confident_joint(TINY_PROBS, TINY_LABELS)
    assert calibrated.sum(axis=1) == pytest.approx([3.0, 2.0])
    assert calibrated[0, 1] == pytest.approx(1.0)


def test_prune_by_noise_rate_finds_the_hand_computed_issue():
    issues = find_label_issues(TINY_PROBS, TINY_LABELS)
    assert issues.tolist() == [False, False, True, False, False]
    assert suggested_label(TINY_PROBS, TINY_LABELS)[2] == 1


def test_out_of_sample_probs_are_distributions_and_accurate_on_blobs():
    x, y = blobs()
    probs, how = out_of_sample_probs(x, y, n_folds=5)
    assert probs.shape == (len(y), 4)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == y).mean() > 0.97
    assert "5-fold stratified" in how and "kNN" in how


@pytest.mark.parametrize("method", ["prune_by_noise_rate", "both", "ensemble"])
def test_confident_learning_finds_flipped_labels_with_few_false_positives(method):
    x, y = blobs(seed=1)
    noisy, truth = flip(y, rate=0.1, seed=1)
    probs, _ = out_of_sample_probs(x, noisy)
    issues = find_label_issues(probs, noisy, method=method, features=x)
    recall = (issues & truth).sum() / truth.sum()
    precision = (issues & truth).sum() / max(issues.sum(), 1)
    assert recall >= 0.9 and precision >= 0.9
    # The suggested label of a found flip is its original label.
    assert (suggested_label(probs, noisy)[issues & truth] == y[issues & truth]).mean() > 0.95


def test_ranking_puts_flipped_labels_first():
    x, y = blobs(seed=2)
    noisy, truth = flip(y, rate=0.1, seed=2)
    probs, _ = out_of_sample_probs(x, noisy)
    for rank_by in ("self_confidence", "normalized_margin"):
        quality = rank_label_issues(probs, noisy, rank_by=rank_by)
        worst = np.argsort(quality)[: truth.sum()]
        assert truth[worst].mean() > 0.9


def test_unlabelled_rows_get_predictions_and_are_never_issues():
    x, y = blobs(n_per_class=60, k=3, d=8, seed=3)
    labels = y.copy()
    labels[::10] = -1
    probs, _ = out_of_sample_probs(x, labels)
    assert (probs[labels == -1].argmax(axis=1) == y[labels == -1]).mean() > 0.95
    assert not find_label_issues(probs, labels)[labels == -1].any()


@pytest.mark.parametrize(
    "labels",
    [
        np.zeros(20, dtype=int),  # one class
        np.array([0] * 19 + [1]),  # a class with a single sample
        np.array([0, 1, 1]),  # fewer rows than folds
        np.array([0, 1]),
        np.array([-1, -1, -1, 0]),
    ],
)
def test_degenerate_inputs_do_not_crash(labels):
    x = np.random.default_rng(0).standard_normal((len(labels), 5))
    probs, how = out_of_sample_probs(x, labels, n_folds=5)
    assert probs.shape[0] == len(labels) and np.allclose(probs.sum(axis=1), 1.0)
    assert how
    assert find_label_issues(probs, labels, method="ensemble", features=x).shape == labels.shape
    assert error_potential(probs, labels).shape == labels.shape
    class_overlap(probs, labels)


def test_one_class_falls_back_to_priors():
    probs, how = out_of_sample_probs(np.ones((6, 3)), np.zeros(6, dtype=int))
    assert "priors" in how and np.allclose(probs, 1.0)


def test_approximate_knn_matches_exact_neighbours_mostly(monkeypatch):
    import workers.engine.labels as kernels

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32) + np.repeat(
        rng.standard_normal((30, 16)) * 3, 100, axis=0
    ).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    own = np.arange(len(x))
    labels = np.zeros(len(x), dtype=np.int64)
    monkeypatch.setattr(kernels, "KNN_K", 10)
    exact, _ = knn_neighbours(x, labels, own)
    monkeypatch.setattr(kernels, "EXACT_KNN_MAX", 100)
    approx, _ = knn_neighbours(x, labels, own)
    assert not (exact == own[:, None]).any() and not (approx == own[:, None]).any()
    overlap = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(exact, approx, strict=True)])
    assert overlap > 0.9


def test_error_potential_is_high_for_wrong_and_uncertain_rows():
    probs = np.array([[0.95, 0.05], [0.55, 0.45], [0.1, 0.9]])
    score = error_potential(probs, np.array([0, 0, 0]))
    assert ((score >= 0) & (score <= 1)).all()
    assert score[0] < score[1] < score[2]


def test_aum_is_lower_for_samples_flipped_mid_training():
    # 10 epochs, 100 samples, 3 classes: clean rows grow confident in their label; the flipped
    # ones are learnt early and then pulled towards their true class, so their margin collapses.
    rng = np.random.default_rng(0)
    n, epochs = 100, 10
    labels = rng.integers(0, 3, size=n)
    flipped = np.zeros(n, dtype=bool)
    flipped[:15] = True
    true = np.where(flipped, (labels + 1) % 3, labels)
    series = []
    for e in range(epochs):
        p = np.full((n, 3), 0.1)
        strength = 0.5 + 0.04 * e
        p[np.arange(n), labels] = np.where(flipped & (e >= 4), 0.2, strength)
        p[np.arange(n), true] = np.where(flipped & (e >= 4), 0.7, p[np.arange(n), true])
        series.append(p / p.sum(axis=1, keepdims=True))
    epoch_probs = np.stack(series)
    final = epoch_probs[-1]
    with_dynamics = error_potential(final, labels, epoch_probs=epoch_probs)
    assert with_dynamics[flipped].min() > with_dynamics[~flipped].max()
    with pytest.raises(ValueError):
        error_potential(final, labels, epoch_probs=epoch_probs[:, :10])


def test_class_overlap_names_the_confused_pair():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 50)
    probs = np.full((150, 3), 0.02)
    probs[np.arange(150), y] = 0.96
    # Classes 0 and 1 are confused: a fifth of each is predicted as the other.
    swap = np.concatenate([rng.choice(50, 10, replace=False), 50 + rng.choice(50, 10, False)])
    probs[swap] = probs[swap][:, [1, 0, 2]]
    result = class_overlap(probs, y)
    assert result["confusion"][0, 1] == 10 and result["confusion"][1, 0] == 10
    assert result["pairs"][0]["classes"] == (0, 1)
    assert result["confident_joint"].shape == (3, 3)


def test_label_noise_estimate_has_a_wilson_interval():
    rate, low, high = label_noise_estimate(np.array([True] * 10 + [False] * 90))
    assert rate == 0.1
    # Wilson 95% for 10/100: [0.0552, 0.1744].
    assert low == pytest.approx(0.0552, abs=1e-3) and high == pytest.approx(0.1744, abs=1e-3)
    assert label_noise_estimate(np.array([], dtype=bool)) == (0.0, 0.0, 1.0)


def test_knn_share_of_the_mixture_shrinks_for_narrow_tabular_inputs():
    from workers.engine.labels import NARROW_DIM, _knn_weight

    assert _knn_weight(384) == pytest.approx(0.5)
    assert _knn_weight(NARROW_DIM) == pytest.approx(0.5)
    assert _knn_weight(4) == pytest.approx(0.25 + 0.25 * 4 / NARROW_DIM)
    assert _knn_weight(4) < _knn_weight(13) < _knn_weight(30) < 0.5


def test_knn_vote_still_fires_when_a_neighbourhood_shares_the_wrong_label():
    # Under heavy class-conditional noise a flipped row's neighbours may carry its wrong label
    # too; the vote must still fire as long as the true class is the neighbourhood majority.
    from workers.engine.labels import _knn_disagrees

    x, y = blobs(n_per_class=40, k=2, d=48, seed=3)
    noisy = y.copy()
    flipped = np.flatnonzero(y == 0)[:12]  # 30% of class 0 labelled 1
    noisy[flipped] = 1
    votes = _knn_disagrees(x, noisy)
    assert votes[flipped].mean() > 0.9
    assert votes[noisy == 0].mean() < 0.1


def test_prune_by_noise_rate_never_empties_a_class() -> None:
    from workers.engine.labels import _prune_by_noise_rate

    # Three rows labelled 0; the joint says two of them belong to class 1 and two to class 2,
    # and the cells' picks overlap to cover all three.
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    probs = np.array(
        [
            [0.1, 0.6, 0.3],
            [0.2, 0.5, 0.3],
            [0.05, 0.15, 0.8],
            [0.0, 1.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, 1.0],
        ]
    )
    joint = np.array([[0.0, 2.0, 2.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    flagged = _prune_by_noise_rate(probs, labels, joint)
    assert flagged[:3].sum() == 2
    assert not flagged[1]  # the most self-confident row of class 0 keeps its label


def test_cross_validation_parts_combine_to_the_whole() -> None:
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    from workers.engine.labels import CrossValidation, label_errors

    x, y = load_wine(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    y = y.copy()
    flips = np.random.default_rng(1).random(len(y)) < 0.2
    y[flips] = (y[flips] + 1) % 3
    y[::17] = -1  # some unlabelled rows: a part of their own
    cv = CrossValidation(x, y)
    parts = [cv.part(i) for i in reversed(range(cv.n_parts))][::-1]  # any order, any worker
    assert cv.n_parts == 6  # five folds and the unlabelled rows
    found = cv.label_errors({key: cv.combine([p[key] for p in parts]) for key in parts[0]})
    whole = label_errors(x, y)
    assert np.allclose(found.probs, whole.probs)
    assert np.array_equal(found.issues, whole.issues)
    assert found.description == whole.description
    assert not found.issues[y < 0].any() and (found.error_probability[y < 0] == 0).all()
    truth = flips & (y >= 0)
    assert (found.issues & truth).sum() / found.issues.sum() > 0.8
    assert (found.issues & truth).sum() / truth.sum() > 0.8


def test_posterior_mislabelled_on_a_hand_computed_example() -> None:
    from workers.engine.labels import posterior_mislabelled

    # Noise model: of the rows truly 0, 90 are labelled 0 and 10 labelled 1; class 1 is clean.
    joint = np.array([[90.0, 0.0], [10.0, 100.0]])
    probs = np.array([[0.8, 0.2], [0.8, 0.2], [0.5, 0.5]])
    labels = np.array([1, 0, -1])
    wrong = posterior_mislabelled(probs, labels, joint)
    # Row 0, labelled 1: P(1 | y=0) p(0) = 0.1 * 0.8 = 0.08; P(1 | y=1) p(1) = 1.0 * 0.2 = 0.2.
    assert wrong[0] == pytest.approx(0.08 / 0.28)
    # Row 1, labelled 0: nothing truly 1 is ever labelled 0, so its label cannot be wrong.
    assert wrong[1] == pytest.approx(0.0)
    assert wrong[2] == 0.0  # unlabelled


def test_max_expected_f1_flags_the_hand_computed_set() -> None:
    from workers.engine.labels import max_expected_f1

    # Sum 2.15; expected F1 of the top m: 0.571, 0.819, 0.777, 0.672, 0.580 -> m = 2.
    flags = max_expected_f1(np.array([0.3, 0.9, 0.05, 0.8, 0.1]))
    assert flags.tolist() == [False, True, False, True, False]
    assert not max_expected_f1(np.zeros(4)).any()
    assert not max_expected_f1(np.array([])).any()


def test_temperature_scaling_recovers_a_known_temperature() -> None:
    from workers.engine.labels import temperature_scaled

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4000, 3)) * 2.0
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=p) for p in true])
    soft = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum(axis=1, keepdims=True)
    scaled, loss = temperature_scaled(soft, labels, np.arange(len(labels)))
    assert np.abs(scaled - true).max() < 0.1
    assert loss < temperature_scaled(soft, labels, np.arange(len(labels)))[1] + 1e-9


def test_neighbours_marked_ignored_do_not_vote() -> None:
    from workers.engine.labels import neighbour_vote

    labels = np.array([0, 1, 1, 0])
    neighbours = np.array([[1, 2], [2, 3]])
    weights = np.ones((2, 2), dtype=np.float32)
    prior = np.array([0.5, 0.5])
    ignore = np.array([False, True, True, False])
    votes = neighbour_vote(labels, neighbours, weights, prior=prior, ignore=ignore)
    assert votes[0] == pytest.approx([0.5, 0.5])  # every neighbour ignored: the prior
    assert votes[1] == pytest.approx([(1 + 0.25) / 1.5, 0.25 / 1.5])


def test_a_flagged_row_is_never_suggested_its_own_label() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    labels = np.array([0, 1, 2])
    issues = np.array([True, False, False])
    assert suggested_label(probs, labels)[0] == 0
    assert suggested_label(probs, labels, issues=issues).tolist() == [1, 1, 2]


def test_a_noise_cell_counted_from_one_row_does_not_outvote_the_probabilities() -> None:
    # Twenty confident rows per class; one row labelled 0 is confidently class 2, so the noise
    # model has seen 0 slip from 2 once and never from 1.
    probs = np.repeat(np.full((3, 3), 0.05) + np.eye(3) * 0.85, 20, axis=0)
    labels = np.repeat(np.arange(3), 20)
    probs = np.vstack([probs, [0.05, 0.05, 0.9], [0.05, 0.8, 0.15]])
    labels = np.concatenate([labels, [0, 0]])
    issues = np.zeros(len(labels), dtype=bool)
    issues[-1] = True
    # The flagged row is four times likelier class 1 than class 2 by its probabilities; the
    # unsmoothed joint, having no count from 1 to 0, would propose 2.
    assert suggested_label(probs, labels, issues=issues)[-1] == 1


def _confident_rows(per_class: int = 20) -> tuple[np.ndarray, np.ndarray]:
    probs = np.repeat(np.full((3, 3), 0.05) + np.eye(3) * 0.85, per_class, axis=0)
    return probs, np.repeat(np.arange(3), per_class)


def test_the_neighbours_vote_decides_between_two_close_classes() -> None:
    # The flagged row (labelled 0) is nearly as likely 1 as 2 by its probabilities, and the
    # noise model has no preference between them; its clean neighbours are mostly 2.
    probs, labels = _confident_rows()
    probs = np.vstack([probs, [0.1, 0.46, 0.44]])
    labels = np.append(labels, 0)
    issues = np.zeros(len(labels), dtype=bool)
    issues[-1] = True
    votes = np.tile([0.05, 0.1, 0.85], (len(labels), 1))
    assert suggested_label(probs, labels, issues=issues)[-1] == 1
    assert suggested_label(probs, labels, issues=issues, votes=votes)[-1] == 2
    # A quarter of the evidence: a vote alone does not overturn clear probabilities.
    probs[-1] = [0.1, 0.7, 0.2]
    assert suggested_label(probs, labels, issues=issues, votes=votes)[-1] == 1


def test_without_the_noise_model_the_probabilities_choose() -> None:
    # Eight rows labelled 0 are confidently class 2, so the noise model has counted 0 slipping
    # from 2 and never from 1: it pulls the flagged row, likelier 1 by its probabilities, to 2.
    probs, labels = _confident_rows()
    probs = np.vstack([probs, np.tile([0.05, 0.05, 0.9], (8, 1)), [0.1, 0.5, 0.4]])
    labels = np.concatenate([labels, np.zeros(9, dtype=int)])
    issues = np.zeros(len(labels), dtype=bool)
    issues[-1] = True
    assert suggested_label(probs, labels, issues=issues)[-1] == 2
    assert suggested_label(probs, labels, issues=issues, noise_model=False)[-1] == 1


def test_cleaning_rounds_beat_the_first_vote_under_class_conditional_noise() -> None:
    from workers.engine.labels import CrossValidation

    # Two overlapping blobs, a third of class 0 relabelled 1: the first model learns much of
    # the noise; refitted without what it flagged, it finds more of the flipped rows.
    x, y = blobs(n_per_class=200, k=3, d=8, seed=5)
    x = x / 3.0
    noisy = y.copy()
    flipped = np.flatnonzero(y == 0)[::3]
    noisy[flipped] = 1
    truth = noisy != y
    cv = CrossValidation(x, noisy)
    first = {key: cv.combine([cv.part(i)[key] for i in range(cv.n_parts)]) for key in cv.part(0)}

    def f1(flags):
        tp = (flags & truth).sum()
        return 2 * tp / (flags.sum() + truth.sum())

    once = cv.label_errors(first, rounds=0).issues
    cleaned = cv.label_errors(first).issues
    assert f1(cleaned) > f1(once) and f1(cleaned) > 0.8


def test_cleaning_rounds_never_flag_every_sample_of_a_class() -> None:
    from workers.engine.labels import _keep_every_class

    labels = np.array([0, 0, 0, 1, 1, 2])
    issues = np.array([False, True, False, True, True, True])
    wrong = np.array([0.1, 0.9, 0.2, 0.8, 0.6, 0.99])
    kept = _keep_every_class(issues, labels, wrong)
    # Class 1 was flagged whole: its row least likely wrong keeps its label. A class of one
    # sample may still be flagged.
    assert kept.tolist() == [False, True, False, True, False, True]


def _given_model(x: np.ndarray, noisy: np.ndarray, *, columns: int) -> np.ndarray:
    """A model run's out-of-fold probabilities from a model that sees only the first `columns`
    features: honest, but too weak to tell most flipped labels from hard rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    model = LogisticRegression(max_iter=1000)
    return cross_val_predict(model, x[:, :columns], noisy, cv=5, method="predict_proba")


def _f1(flags: np.ndarray, truth: np.ndarray) -> float:
    return float(2 * (flags & truth).sum() / max(flags.sum() + truth.sum(), 1))


def test_given_probabilities_with_the_features_beat_them_alone() -> None:
    from workers.engine.labels import label_errors

    x, y = blobs(n_per_class=120, k=4, d=48, seed=3)
    noisy, truth = flip(y, rate=0.15, seed=3)
    given = _given_model(x, noisy, columns=1)
    alone = find_label_issues(given, noisy, method="ensemble")
    found = label_errors(x, noisy, given=given)
    assert _f1(found.issues, truth) > 0.85
    assert _f1(found.issues, truth) > _f1(alone, truth) + 0.3
    # The blend keeps a column per class of the given model, and sums to one.
    assert found.probs.shape == given.shape
    assert np.allclose(found.probs.sum(axis=1), 1.0)


def test_suggested_labels_of_found_errors_are_the_true_class() -> None:
    from workers.engine.labels import label_errors

    x, y = blobs(n_per_class=120, k=4, d=48, seed=4)
    noisy, truth = flip(y, rate=0.2, seed=4)
    given = _given_model(x, noisy, columns=1)
    found = label_errors(x, noisy, given=given)
    hits = found.issues & truth
    suggested = suggested_label(found.probs, noisy, issues=found.issues)
    assert hits.sum() > 0.8 * truth.sum()
    assert (suggested[hits] == y[hits]).mean() > 0.95
    # The given model's top class, cleanlab's suggestion, is right far less often.
    assert (np.argmax(given, axis=1)[hits] == y[hits]).mean() < 0.8


def test_given_probabilities_are_checked() -> None:
    from workers.engine.labels import label_errors

    x, y = blobs(n_per_class=20, k=3, d=8)
    with pytest.raises(ValueError, match="outside the probability columns"):
        label_errors(x, y, given=np.full((len(y), 2), 0.5))
    with pytest.raises(ValueError, match="finite and non-negative"):
        label_errors(x, y, given=np.full((len(y), 3), np.nan))
    with pytest.raises(ValueError, match="one label per row"):
        label_errors(x, y, given=np.full((len(y) - 1, 3), 1 / 3))


def _human_noise(x: np.ndarray, y: np.ndarray, *, rate: float, seed: int) -> np.ndarray:
    """Labels an annotator would get wrong: rows drawn in proportion to a cross-validated
    model's probability of their likeliest other class, and relabelled to it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    clean = cross_val_predict(LogisticRegression(max_iter=1000), x, y, cv=5, method="predict_proba")
    clean[np.arange(len(y)), y] = 0.0
    weight = clean.max(axis=1) + 1e-9
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(y), size=int(rate * len(y)), replace=False, p=weight / weight.sum())
    noisy = y.copy()
    noisy[rows] = np.argmax(clean[rows], axis=1)
    return noisy


def test_instance_dependent_noise_is_counted_in_full() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    from workers.engine.labels import label_errors

    # Plausible slips look right to a model fitted on them, so the rows' error probabilities
    # sum to a fraction of the wrong labels (the expected-F1 set alone flagged 25 of 113); the
    # count the cleaned model disputes restores it without losing precision.
    data = load_breast_cancer()
    x, y = StandardScaler().fit_transform(data.data), data.target
    noisy = _human_noise(x, y, rate=0.2, seed=0)
    truth = noisy != y
    found = label_errors(x, noisy)
    assert found.issues.sum() > 0.6 * truth.sum()
    assert (found.issues & truth).sum() > 0.85 * found.issues.sum()
    # The suggestions then leave the class-level noise model out, and are still right.
    assert found.instance_dependent
    hits = found.issues & truth
    assert (found.suggested(noisy)[hits] == y[hits]).mean() > 0.95


def test_uniform_noise_keeps_the_noise_model_and_votes_leave_flagged_rows_out() -> None:
    x, y = blobs(n_per_class=100, k=4, d=16, seed=2)
    noisy, truth = flip(y, rate=0.15, seed=2)
    found = label_errors(x, noisy)
    assert not found.instance_dependent
    assert found.votes is not None and found.votes.shape == found.probs.shape
    assert np.allclose(found.votes.sum(axis=1), 1.0)
    # Flagged rows do not vote: a flipped row's neighbours (of its true class) vote for it.
    hits = found.issues & truth
    assert (np.argmax(found.votes[hits], axis=1) == y[hits]).mean() > 0.95
    assert (found.suggested(noisy)[hits] == y[hits]).mean() > 0.95


def test_doubt_ranks_like_one_minus_self_confidence_and_keeps_resolution() -> None:
    p = np.array([1.0, 0.99, 0.5, 1e-3, 1e-10, 1e-20, 0.0])
    score = doubt(p)
    assert np.all(np.diff(score) > 0) and score[0] == 0.0 and score[-1] == 1.0
    assert score[1] == pytest.approx(0.01, abs=1e-3)  # about 1 - p for confident rows
    # 1 - p is 1.000 for both saturated rows; the score tells them apart at three decimals.
    assert round(score[5], 3) > round(score[4], 3) > round(score[3], 3)


def test_flagged_rows_mislabel_scores_and_error_potential_do_not_tie() -> None:
    """Calibrated probabilities of well-separated classes saturate (self-confidence 1e-20 for
    a flipped label): 1 - p ties every flagged row at 1.0, the stored scores must not."""
    x, y = blobs(n_per_class=100, d=16)
    noisy, flipped = flip(y, rate=0.05)
    found = label_errors(x, noisy)
    flagged = np.flatnonzero(found.issues)
    assert len(flagged) >= 10
    confidence = found.probs[np.arange(len(noisy)), noisy]
    assert len(np.unique(1.0 - confidence[flagged])) == 1  # the saturation this guards against
    score = doubt(confidence)
    assert len(np.unique(score[flagged])) >= 0.8 * len(flagged)
    hardness = error_potential(found.probs, noisy)
    assert len(np.unique(hardness[flagged])) >= 0.8 * len(flagged)
    planted = np.flatnonzero(flipped)
    top = np.argsort(-score, kind="stable")[: len(planted)]
    assert len(set(top.tolist()) & set(planted.tolist())) >= 0.9 * len(planted)
