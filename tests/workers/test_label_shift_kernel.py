"""The class signals of monitoring on a labelled Gaussian mixture (each component a class, with
overlap so the classifier errs): unshifted windows rarely alert, a changed class mix is caught
and its class named, rows from a region no class covers are counted as a new kind of data."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from workers.engine import label_shift, monitor, neighbours

DIM, CLASSES, TRAIN, BATCH = 16, 5, 1_500, 300
NAMES = ["a", "b", "c", "d", "e"]


def labelled(rng, n, centres, weights=None):
    y = rng.choice(len(centres), size=n, p=weights)
    return (centres[y] + 1.2 * rng.standard_normal((n, centres.shape[1]))).astype(np.float32), y


@pytest.fixture(scope="module")
def world():
    base = np.random.default_rng(7)
    centres = base.standard_normal((CLASSES, DIM)) + 2.5 * np.eye(CLASSES, DIM)
    elsewhere = -3.0 * np.eye(DIM)[CLASSES + 1] + 0.5 * base.standard_normal(DIM)
    train, y = labelled(np.random.default_rng(1000), TRAIN, centres)
    with threadpool_limits(1):
        classes = label_shift.class_reference(train, [NAMES[i] for i in y])
        clusters = neighbours.clusters(train, n_clusters=monitor.cluster_count(TRAIN), seed=0)
        ref = monitor.reference(train, clusters)
    return {
        "centres": centres,
        "elsewhere": elsewhere,
        "train": train,
        "y": y,
        "classes": classes,
        "ref": ref,
    }


def run(world, production, **kwargs):
    with threadpool_limits(1):
        return label_shift.check(world["classes"], production, **kwargs)


def signals(result) -> set[str]:
    return {c["signal"] for c in result["crossed"]}


def test_the_reference_is_calibrated_on_training(world):
    classes = world["classes"]
    assert classes.classes == NAMES and classes.source == "embeddings"
    assert classes.nominal == pytest.approx(label_shift.NEW_KIND_NOMINAL, abs=0.005)
    assert np.allclose(classes.confusion.sum(axis=0), 1.0)
    accuracy = np.mean(classes.predicted == classes.labels)
    assert 0.6 < accuracy < 0.99  # overlapping classes: the classifier errs, as real ones do
    # The cut is training's own out-of-fold distances' (1 - nominal) quantile.
    assert len(classes.null) == TRAIN and np.all(np.diff(classes.null) >= 0)
    assert np.mean(classes.null > classes.dist_cut) == pytest.approx(classes.nominal, abs=1e-3)
    assert classes.centres.shape == (label_shift.FOLDS, CLASSES, DIM)
    # These classes are apart: one left out of training is far from the others.
    assert classes.recall > 0.5


def test_unshifted_windows_rarely_alert_on_any_of_the_five_signals(world):
    """100 windows of 300 from the training distribution: the class signals each stay near the
    p-value threshold, and all five signals together alert in at most 5% of windows."""
    alerts, by_signal = 0, dict.fromkeys(monitor.SIGNALS, 0)
    shares = []
    with threadpool_limits(1):
        for seed in range(100):
            production, _ = labelled(np.random.default_rng(seed), BATCH, world["centres"])
            result = monitor.window_check(
                None, None, production, ref=world["ref"], classes=world["classes"], seed=seed
            )
            alerts += result["alert"]
            shares.append(result["new_kind"]["share"])
            for crossed in result["crossed"]:
                by_signal[crossed["signal"]] += 1
    print(f"\nunshifted: {alerts} of 100 windows alerted; by signal {by_signal}")
    assert alerts <= 5
    assert by_signal["label_shift"] <= 3 and by_signal["new_kind"] <= 3
    # The new-kind share of an unshifted window sits at its nominal rate.
    assert np.mean(shares) == pytest.approx(world["classes"].nominal, abs=0.01)


def test_a_changed_class_mix_is_caught_and_the_class_named(world):
    weights = np.full(CLASSES, 0.6 / (CLASSES - 1))
    weights[2] = 0.4  # class c from 20% to 40% of production
    production, _ = labelled(np.random.default_rng(3), BATCH, world["centres"], weights)
    keys = [f"p{i}" for i in range(BATCH)]
    result = run(world, production, production_keys=keys)
    assert "label_shift" in signals(result)
    shift = result["label_shift"]
    assert shift["p_value"] < 1e-6
    top = shift["classes"][0]
    assert top["class"] == "c" and top["significant"]
    assert top["change"] == pytest.approx(0.2, abs=0.08)  # the estimate undoes the confusion
    assert top["train_share"] == pytest.approx(np.mean(world["y"] == 2))
    assert top["examples"] and set(top["examples"]) <= set(keys)
    fallen = [r for r in shift["classes"] if r["change"] < 0]
    assert len(fallen) == CLASSES - 1
    (reason,) = [c for c in result["crossed"] if c["signal"] == "label_shift"]
    assert reason["class"] == "c" and reason["change"] > 0 and reason["threshold"] == 0.15
    assert "new_kind" not in signals(result)  # nothing new, only more of one class


def test_a_small_change_is_significant_but_below_the_threshold(world):
    """4,000 rows, class c from 20% to 28%: the test sees it, the alert waits for 15 points."""
    weights = np.full(CLASSES, 0.72 / (CLASSES - 1))
    weights[2] = 0.28
    production, _ = labelled(np.random.default_rng(4), 4_000, world["centres"], weights)
    result = run(world, production)
    assert result["label_shift"]["p_value"] < 0.01
    assert "label_shift" not in signals(result)
    assert "label_shift" in signals(run(world, production, label_shift_threshold=0.05))


def test_a_new_kind_of_data_is_counted_with_its_examples(world):
    rng = np.random.default_rng(5)
    new = int(0.2 * BATCH)
    known, _ = labelled(rng, BATCH - new, world["centres"])
    strange = (world["elsewhere"] + 0.5 * rng.standard_normal((new, DIM))).astype(np.float32)
    production = np.vstack([known, strange])
    keys = [f"p{i}" for i in range(BATCH)]
    result = run(world, production, production_keys=keys)
    new_kind = result["new_kind"]
    assert "new_kind" in signals(result)
    assert new_kind["p_value"] < 1e-6 and new_kind["share"] > 0.1
    assert new_kind["flags"][-new:].mean() > 0.5  # the newcomers are the ones flagged
    assert new_kind["flags"][:-new].mean() < 0.06
    assert new_kind["examples"] and set(new_kind["examples"]) <= {f"p{i}" for i in range(BATCH)}
    flagged_new = sum(1 for k in new_kind["examples"] if int(k[1:]) >= BATCH - new)
    assert flagged_new / len(new_kind["examples"]) > 0.8
    assert new_kind["estimated_share"] == pytest.approx(0.2, abs=0.06)
    assert new_kind["estimated_share"] <= new_kind["upper"] < 0.4
    flagged = new_kind["flags"]
    first = [f"p{i}" for i in np.flatnonzero(flagged)]
    assert new_kind["examples"][0] in first  # farthest first


def test_a_new_kind_between_the_classes_is_seen_by_the_rank_test(world):
    """Rows between classes a and b, as spread as a class: hardly past the distance cut, but
    somewhat far and unsure, many of them. The rank test of the far-and-unsure scores says so
    more strongly than the count past the cut, and its examples are mostly the newcomers."""
    new = int(0.3 * BATCH)
    middle = (world["centres"][0] + world["centres"][1]) / 2
    stronger = 0
    for seed in range(5):
        rng = np.random.default_rng(500 + seed)
        known, _ = labelled(rng, BATCH - new, world["centres"])
        between = (middle + 1.2 * rng.standard_normal((new, DIM))).astype(np.float32)
        keys = [f"p{i}" for i in range(BATCH)]
        result = run(world, np.vstack([known, between]), production_keys=keys, seed=seed)
        new_kind = result["new_kind"]
        assert "new_kind" in signals(result)
        assert new_kind["rank_p_value"] < 1e-4
        stronger += new_kind["rank_p_value"] < new_kind["tail_p_value"]
        newcomers = [int(k[1:]) >= BATCH - new for k in new_kind["score_examples"]]
        assert len(newcomers) == label_shift.EXAMPLES and np.mean(newcomers) > 0.5  # 0.3 by chance
        assert 0.1 <= new_kind["upper"]
    assert stronger >= 4


def test_a_new_kind_the_classifier_is_sure_of_is_still_counted():
    """Training varies little outside the classes' dimensions; the new rows sit beside class a
    along a dimension training never moves in. The classifier calls them "a" with confidence,
    yet they are far from every class, and a tenth of a window of them alerts."""
    rng = np.random.default_rng(11)
    dim, n = 12, 600
    centres = np.zeros((3, dim))
    centres[np.arange(3), np.arange(3)] = 3.0
    spread = np.r_[np.full(3, 0.8), np.full(dim - 3, 0.1)]
    y = rng.integers(0, 3, n)
    train = centres[y] + spread * rng.standard_normal((n, dim))
    with threadpool_limits(1):
        classes = label_shift.class_reference(train, [NAMES[i] for i in y])
        known = rng.integers(0, 3, 360)
        window = centres[known] + spread * rng.standard_normal((360, dim))
        strange = centres[0] + 1.0 * np.eye(dim)[dim - 1] + spread * rng.standard_normal((40, dim))
        production = np.vstack([window, strange])
        probs = label_shift.production_probabilities(classes, production)
        result = label_shift.check(classes, production)
    assert np.median(probs[-40:, 0]) > 0.9  # sure of it: "a"
    assert np.median(probs[-40:].max(axis=1)) >= np.median(probs[:-40].max(axis=1)) - 0.05
    new_kind = result["new_kind"]
    assert new_kind["flags"][-40:].mean() > 0.9 and new_kind["flags"][:-40].mean() < 0.06
    assert new_kind["estimated_share"] == pytest.approx(0.1, abs=0.04)
    assert "new_kind" in signals(result)


def test_a_model_runs_probabilities_are_compared_as_given(world):
    """Probabilities from a model run on both sides: training's out of sample, production's."""
    train_probs = np.zeros((TRAIN, CLASSES))
    train_probs[np.arange(TRAIN), world["y"]] = 0.8
    train_probs += 0.2 / CLASSES
    classes = label_shift.class_reference(
        world["train"], [NAMES[i] for i in world["y"]], train_probs=train_probs, classes=NAMES
    )
    assert classes.source == "model run" and classes.coef is None
    assert np.allclose(np.diag(classes.confusion), 1.0)
    production, y = labelled(np.random.default_rng(6), BATCH, world["centres"])
    probs = np.full((BATCH, CLASSES), 0.2 / CLASSES)
    probs[np.arange(BATCH), np.where(y == 0, 1, y)] += 0.8  # every "a" called "b"
    result = label_shift.check(classes, production, production_probs=probs)
    rows = {r["class"]: r for r in result["label_shift"]["classes"]}
    assert rows["a"]["production_share"] == 0.0 and rows["a"]["significant"]
    assert "label_shift" in signals(result)
    with pytest.raises(ValueError, match="give them"):
        label_shift.check(classes, production)
    with pytest.raises(ValueError, match="production probabilities must be"):
        label_shift.check(classes, production, production_probs=probs[:, :2])


def test_small_tables_get_a_simulated_p_value_that_stays_valid():
    rng = np.random.default_rng(0)
    train = np.array([600, 300, 60, 30, 10])
    p_values = []
    for seed in range(300):
        prod = rng.multinomial(30, train / train.sum())
        p_values.append(label_shift._table_p_value(train, prod, seed))
    assert np.mean(np.array(p_values) < 0.05) <= 0.08
    assert label_shift._table_p_value(train, np.array([0, 0, 0, 0, 30]), 0) < 0.001


def test_bad_training_labels_are_refused_clearly(world):
    with pytest.raises(ValueError, match="two classes"):
        label_shift.class_reference(world["train"], ["a"] * TRAIN)
    with pytest.raises(ValueError, match="one training label per training row"):
        label_shift.class_reference(world["train"], ["a", "b"])
    with pytest.raises(ValueError, match="training probabilities"):
        label_shift.class_reference(
            world["train"], [NAMES[i] for i in world["y"]], train_probs=np.ones((3, 5))
        )


def test_without_classes_the_window_check_is_as_before(world):
    production, _ = labelled(np.random.default_rng(8), BATCH, world["centres"])
    plain = monitor.window_check(None, None, production, ref=world["ref"])
    both = monitor.window_check(None, None, production, ref=world["ref"], classes=world["classes"])
    assert plain["label_shift"] is None and plain["new_kind"] is None
    for key in ("auc", "p_value", "share_out_of_coverage", "max_cluster_shift"):
        assert plain[key] == both[key]
