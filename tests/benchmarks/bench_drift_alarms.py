"""Drift monitoring: false alarms on unshifted windows and detection of known shifts.

Run: .venv/bin/python -m tests.benchmarks.bench_drift_alarms [--seeds 100] [--dim 32] [--clusters own]

A clustered Gaussian mixture (8 components) is the training set (2,000 rows); each window is
drawn afresh with seeds 0..N-1, unshifted or shifted in one of three ways, and checked with the
default thresholds (workers.engine.monitor.window_check). Prints, per setting, the share of
windows that alert and which signals crossed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from workers.engine import monitor, neighbours

COMPONENTS, TRAIN = 8, 2_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument(
        "--clusters",
        choices=["scoring", "own"],
        default="scoring",
        help="training clusters as a scoring run makes them (what a check uses once the dataset "
        "is scored), or the check's own coarser regions (before any run)",
    )
    args = parser.parse_args()
    cluster_count = (
        neighbours.default_cluster_count if args.clusters == "scoring" else monitor.cluster_count
    )
    dim = args.dim
    base = np.random.default_rng(12345)
    centres = base.standard_normal((COMPONENTS, dim)) + 3.0 * np.eye(COMPONENTS, dim)
    direction = base.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    elsewhere = base.standard_normal(dim) - 3.0 * np.eye(dim)[0]

    def mixture(rng, n, weights=None):
        picked = rng.choice(COMPONENTS, size=n, p=weights)
        return centres[picked] + rng.standard_normal((n, dim))

    def mean_shift(amount):
        return lambda rng, n: mixture(rng, n) + amount * direction

    def new_region(share):
        def draw(rng, n):
            k = round(share * n)
            return np.vstack([mixture(rng, n - k), elsewhere + rng.standard_normal((k, dim))])

        return draw

    def reweighted(weight):
        weights = np.full(COMPONENTS, (1 - weight) / (COMPONENTS - 1))
        weights[0] = weight
        return lambda rng, n: mixture(rng, n, weights)

    train = mixture(np.random.default_rng(1000), TRAIN).astype(np.float32)
    clusters = neighbours.clusters(train, n_clusters=cluster_count(TRAIN), seed=0)
    ref = monitor.reference(train, clusters)
    settings = [
        ("unshifted", 30, mixture),
        ("unshifted", 200, mixture),
        ("unshifted", 1000, mixture),
        ("mean shift 0.5", 200, mean_shift(0.5)),
        ("mean shift 1.0", 200, mean_shift(1.0)),
        ("new region 10%", 200, new_region(0.1)),
        ("new region 20%", 200, new_region(0.2)),
        ("component 0 at 25%", 200, reweighted(0.25)),
        ("component 0 at 40%", 200, reweighted(0.4)),
    ]
    print("| setting | window | alerts | test | coverage | cluster shift | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with threadpool_limits(1):
        for name, n, draw in settings:
            started = time.monotonic()
            counts = dict.fromkeys(monitor.SIGNALS, 0)
            alerts = 0
            for seed in range(args.seeds):
                window = draw(np.random.default_rng(seed), n).astype(np.float32)
                result = monitor.window_check(None, None, window, ref=ref)
                alerts += result["alert"]
                for crossed in result["crossed"]:
                    counts[crossed["signal"]] += 1
            seconds = time.monotonic() - started
            print(
                f"| {name} | {n} | {alerts / args.seeds:.0%} | "
                + " | ".join(f"{counts[s] / args.seeds:.0%}" for s in monitor.SIGNALS)
                + f" | {seconds:.1f} |"
            )


if __name__ == "__main__":
    main()
