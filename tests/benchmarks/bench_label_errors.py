"""Label-error detection benchmark: Loupe's kernels against cleanlab on injected noise.

Run: .venv/bin/python -m tests.benchmarks.bench_label_errors [--seeds 3] [--method cleaning]
Needs cleanlab in the venv (benchmark only; it is AGPL and never imported by workers/).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler

from workers.engine.labels import CrossValidation, find_label_issues, label_errors

RATES = (0.05, 0.10, 0.20, 0.30)
KINDS = ("uniform", "asymmetric")


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Bundled scikit-learn sets (no download) plus one synthetic set, features standardised."""
    out = {}
    for name, loader in [
        ("digits", load_digits),
        ("wine", load_wine),
        ("breast_cancer", load_breast_cancer),
        ("iris", load_iris),
    ]:
        data = loader()
        out[name] = (data.data, data.target)
    x, y = make_classification(
        n_samples=2000,
        n_features=40,
        n_informative=12,
        n_classes=6,
        n_clusters_per_class=2,
        class_sep=1.5,
        random_state=0,
    )
    out["synthetic6"] = (x, y)
    return {
        name: (StandardScaler().fit_transform(x), y.astype(int)) for name, (x, y) in out.items()
    }


def confusable(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each class's nearest other class by centroid: the flip target for asymmetric noise."""
    k = int(y.max()) + 1
    centres = np.stack([x[y == c].mean(axis=0) for c in range(k)])
    d = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    return np.argmin(d, axis=1)


def inject(y: np.ndarray, *, rate: float, kind: str, target: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = int(y.max()) + 1
    noisy = y.copy()
    flip = rng.choice(len(y), size=int(round(rate * len(y))), replace=False)
    if kind == "uniform":
        shift = rng.integers(1, k, size=len(flip))
        noisy[flip] = (y[flip] + shift) % k
    else:
        noisy[flip] = target[y[flip]]
    return noisy


def scores(found: np.ndarray, truth: np.ndarray, ranking: np.ndarray) -> dict[str, float]:
    tp = int((found & truth).sum())
    precision = tp / max(int(found.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    top = np.argsort(ranking, kind="stable")[: int(truth.sum())]
    p_at_k = float(truth[top].mean()) if len(top) else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "p_at_k": p_at_k}


def self_confidence(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return probs[np.arange(len(labels)), labels]


def detect(x: np.ndarray, noisy: np.ndarray, *, seed: int, method: str):
    """Loupe's flags and probabilities: what a scoring run computes from features alone
    (`cleaning`), or one confident-learning method on the first round's probabilities."""
    if method == "cleaning":
        found = label_errors(x, noisy, seed=seed)
        return found.issues, found.probs
    cv = CrossValidation(x, noisy, seed=seed)
    parts = [cv.part(i) for i in range(cv.n_parts)]
    first = cv.label_errors(
        {key: cv.combine([p[key] for p in parts]) for key in parts[0]}, rounds=0
    )
    return find_label_issues(first.probs, noisy, method=method, features=x), first.probs


def run(seeds: int, method: str, *, first_seed: int = 0, rates=RATES) -> dict:
    from cleanlab.filter import find_label_issues as cl_find

    rows = []
    for name, (x, y) in datasets().items():
        target = confusable(x, y)
        for kind in KINDS:
            for rate in rates:
                for seed in range(first_seed, first_seed + seeds):
                    noisy = inject(y, rate=rate, kind=kind, target=target, seed=seed)
                    truth = noisy != y
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        base_probs = cross_val_predict(
                            LogisticRegression(max_iter=1000),
                            x,
                            noisy,
                            cv=5,
                            method="predict_proba",
                        )
                        base = cl_find(noisy, base_probs)
                    ours, ours_probs = detect(x, noisy, seed=seed, method=method)
                    rows.append(
                        {
                            "dataset": name,
                            "kind": kind,
                            "rate": rate,
                            "seed": seed,
                            "ours": scores(ours, truth, self_confidence(ours_probs, noisy)),
                            "cleanlab": scores(base, truth, self_confidence(base_probs, noisy)),
                        }
                    )
    return summarise(rows)


def summarise(rows: list[dict]) -> dict:
    print(f"{'dataset':14} {'noise':10} {'rate':>5}   ours P/R/F1/P@k          cleanlab P/R/F1/P@k")
    cases: dict[tuple, list[dict]] = {}
    for row in rows:
        cases.setdefault((row["dataset"], row["kind"], row["rate"]), []).append(row)
    worst_gap = np.inf
    for (name, kind, rate), group in cases.items():
        means = {
            who: {m: float(np.mean([g[who][m] for g in group])) for m in group[0][who]}
            for who in ("ours", "cleanlab")
        }
        worst_gap = min(worst_gap, means["ours"]["f1"] - means["cleanlab"]["f1"])
        print(
            f"{name:14} {kind:10} {rate:5.2f}   "
            + " ".join(f"{means['ours'][m]:.3f}" for m in means["ours"])
            + "   "
            + " ".join(f"{means['cleanlab'][m]:.3f}" for m in means["cleanlab"])
        )
    overall = {
        who: {m: round(float(np.mean([r[who][m] for r in rows])), 4) for m in rows[0][who]}
        for who in ("ours", "cleanlab")
    }
    overall["f1_gain"] = round(overall["ours"]["f1"] - overall["cleanlab"]["f1"], 4)
    overall["worst_case_f1_gap"] = round(float(worst_gap), 4)
    overall["cases"] = len(cases)
    overall["runs"] = len(rows)
    return overall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--method", default="cleaning")
    parser.add_argument("--first-seed", type=int, default=0, help="Seeds first-seed, first-seed+1…")
    parser.add_argument(
        "--rates", default=",".join(map(str, RATES)), help="Noise rates, comma-separated."
    )
    args = parser.parse_args()
    started = time.perf_counter()
    rates = tuple(float(r) for r in args.rates.split(","))
    overall = run(args.seeds, args.method, first_seed=args.first_seed, rates=rates)
    overall["method"] = args.method
    overall["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(overall))


if __name__ == "__main__":
    main()
