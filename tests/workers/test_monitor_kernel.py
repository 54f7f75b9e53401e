"""The monitoring kernel on a clustered Gaussian mixture whose shifts are known: unshifted
windows rarely alert, and each kind of shift crosses the signal made for it."""

from __future__ import annotations

import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from workers.engine import monitor, neighbours

DIM, COMPONENTS, TRAIN, BATCH = 32, 8, 2_000, 200
ALLOWED_FALSE_ALARMS = 0.05


def mixture(rng, n, centres, weights=None):
    """Rows of a Gaussian mixture: unit-variance noise around well separated centres."""
    picked = rng.choice(len(centres), size=n, p=weights)
    return (centres[picked] + rng.standard_normal((n, centres.shape[1]))).astype(np.float32)


@pytest.fixture(scope="module")
def world():
    base = np.random.default_rng(12345)
    centres = base.standard_normal((COMPONENTS, DIM)) + 3.0 * np.eye(COMPONENTS, DIM)
    direction = base.standard_normal(DIM)
    elsewhere = base.standard_normal(DIM) - 3.0 * np.eye(DIM)[0]
    train = mixture(np.random.default_rng(1000), TRAIN, centres)
    clusters = neighbours.clusters(train, n_clusters=monitor.cluster_count(TRAIN), seed=0)
    return {
        "centres": centres,
        "direction": direction / np.linalg.norm(direction),
        "elsewhere": elsewhere,
        "train": train,
        "clusters": clusters,
        "ref": monitor.reference(train, clusters),
    }


def check(world, production, **thresholds):
    return monitor.window_check(None, None, production, ref=world["ref"], **thresholds)


def signals(result) -> set[str]:
    return {c["signal"] for c in result["crossed"]}


def test_unshifted_windows_rarely_alert(world):
    """100 windows of 200 from the training distribution, seeds 0..99: at most 5% alert."""
    started = time.monotonic()
    alerts = []
    by_signal = dict.fromkeys(monitor.SIGNALS, 0)
    # One BLAS thread: on a shared machine, threads fighting over the cores made this 5x slower.
    with threadpool_limits(1):
        for seed in range(100):
            production = mixture(np.random.default_rng(seed), BATCH, world["centres"])
            result = check(world, production, seed=0)
            alerts.append(result["alert"])
            for crossed in result["crossed"]:
                by_signal[crossed["signal"]] += 1
    rate = float(np.mean(alerts))
    print(
        f"\nfalse-alarm rate on 100 unshifted windows of {BATCH} ({DIM}-d, training {TRAIN}): "
        f"{rate:.0%} ({sum(alerts)} alerts; by signal {by_signal}) "
        f"in {time.monotonic() - started:.1f} s"
    )
    assert rate <= ALLOWED_FALSE_ALARMS


def test_the_training_side_can_be_given_as_arrays(world):
    production = mixture(np.random.default_rng(7), BATCH, world["centres"])
    with_ref = check(world, production)
    plain = monitor.window_check(world["train"], world["clusters"], production)
    assert plain["auc"] == pytest.approx(with_ref["auc"])
    assert plain["share_out_of_coverage"] == with_ref["share_out_of_coverage"]
    assert plain["max_cluster_shift"] == pytest.approx(with_ref["max_cluster_shift"])


def test_unshifted_window_reads_near_chance(world):
    result = check(world, mixture(np.random.default_rng(3), BATCH, world["centres"]))
    assert abs(result["auc"] - 0.5) < 0.1
    assert 0.0 <= result["share_out_of_coverage"] < 0.12  # about 5% by construction
    assert result["max_cluster_shift"] < 0.1
    assert result["alert"] is False and result["crossed"] == []


def test_a_mean_shift_is_caught_by_the_test_alone(world):
    production = mixture(np.random.default_rng(1), BATCH, world["centres"])
    production += 1.0 * world["direction"]
    result = check(world, production)
    assert result["alert"]
    assert signals(result) == {"test"}
    assert result["auc"] > 0.6 and result["p_value"] < 0.01
    (reason,) = result["crossed"]
    assert reason == {"signal": "test", "value": result["p_value"], "threshold": 0.01}


def test_a_new_region_is_out_of_coverage(world):
    rng = np.random.default_rng(2)
    new = int(0.3 * BATCH)
    production = np.vstack(
        [
            mixture(rng, BATCH - new, world["centres"]),
            world["elsewhere"] + rng.standard_normal((new, DIM)),
        ]
    )
    result = check(world, production)
    assert "coverage" in signals(result)
    assert result["share_out_of_coverage"] > 0.25
    assert result["out_of_coverage"][-new:].mean() > 0.8  # the newcomers are the ones flagged
    assert result["out_of_coverage"][:-new].mean() < 0.12
    reason = next(c for c in result["crossed"] if c["signal"] == "coverage")
    assert reason["value"] == result["share_out_of_coverage"] and reason["threshold"] == 0.15
    assert result["coverage_p_value"] < 1e-6


def test_reweighted_clusters_shift_cluster_shares(world):
    weights = np.full(COMPONENTS, 0.5 / (COMPONENTS - 1))
    weights[0] = 0.5  # one component from 12.5% to 50% of production
    production = mixture(np.random.default_rng(4), BATCH, world["centres"], weights)
    result = check(world, production)
    assert "cluster_shift" in signals(result)
    assert "coverage" not in signals(result)  # nothing new, only more of one kind
    assert result["max_cluster_shift"] > 0.1
    grown = result["clusters"][0]
    assert grown["change"] > 0.1 and grown["significant"]
    reason = next(c for c in result["crossed"] if c["signal"] == "cluster_shift")
    assert reason["cluster"] == grown["cluster"] and reason["threshold"] == 0.10


def test_a_big_change_in_a_small_window_is_not_an_alert_unless_significant(world):
    """30 samples: one cluster's share moving by 10 points is 3 samples, often chance."""
    rng = np.random.default_rng(5)
    production = mixture(rng, 30, world["centres"])
    result = check(world, production, seed=0)
    for row in result["clusters"]:
        assert row["significant"] == (row["p_value"] < 0.01)
    counted = [r for r in result["clusters"] if abs(r["change"]) > 0.1 and r["significant"]]
    assert ("cluster_shift" in signals(result)) == bool(counted)


def test_cluster_rows_carry_example_keys(world):
    production = mixture(np.random.default_rng(6), 50, world["centres"])
    keys = [f"p{i}" for i in range(50)]
    result = monitor.window_check(None, None, production, ref=world["ref"], production_keys=keys)
    assigned = result["production_clusters"]
    for row in result["clusters"]:
        assert row["examples"] == [keys[i] for i in np.flatnonzero(assigned == row["cluster"])]
        assert row["n_production"] == int((assigned == row["cluster"]).sum())
    assert sum(r["n_production"] for r in result["clusters"]) == 50


def test_too_small_a_window_is_refused(world):
    with pytest.raises(ValueError, match="at least"):
        check(world, world["train"][:5])


def test_cluster_terms_name_clusters_by_their_words():
    terms = monitor.cluster_terms(
        [0, 0, 1, 1], ["refund my order", "refund please", "wifi drops", "wifi keeps failing"]
    )
    assert "refund" in terms[0] and "wifi" in terms[1]


def test_cauchy_combination_is_uniform_under_the_null_and_follows_small_p_values():
    rng = np.random.default_rng(0)
    combined = [neighbours.cauchy_combination(rng.uniform(size=5)) for _ in range(4000)]
    assert np.mean(np.array(combined) < 0.01) == pytest.approx(0.01, abs=0.006)
    assert neighbours.cauchy_combination([1e-20, 0.5, 0.5, 0.5, 0.5]) < 1e-18
    assert neighbours.cauchy_combination([1.0, 1.0]) == pytest.approx(1.0, abs=1e-6)
    assert neighbours.cauchy_combination([]) == 1.0
