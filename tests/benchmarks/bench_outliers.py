"""Outlier benchmark: planted groups and lone samples, Loupe against cleanlab Datalab's outlier issue.

Run: nice -n 10 .venv/bin/python -m tests.benchmarks.bench_outliers [--seeds 3]
Needs the fortunes corpus (see tests/benchmarks/corpora.py), MiniLM (the `embed` extra), and
cleanlab[datalab] in the venv for the baseline (benchmark only, never imported by workers/).

Cases, each on the same features for both tools:
  grouped     5 % of samples from five foreign sources (a group per source), random classes
  plausible   the same groups, each given one plausible class (licences: law, code: computers…)
  isolated    1.5 % single foreign rows drawn from all sources, random classes
  clean       the fortunes alone: how many each tool flags with nothing planted (--cases clean)
  digits      sklearn digits without the 9s; 5 % are 9s given other classes (a group), plus
              1 % rows of uniform noise pixels (alone)
Loupe runs the scoring pipeline's kernels: the kNN table (neighbours.knn), cross-validated
probabilities (not used by the outlier score) and `outliers.find_outliers`.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from tests.benchmarks.corpora import FOREIGN, embed, foreign, fortunes
from workers.engine.neighbours import knn
from workers.engine.outliers import find_outliers

# A plausible class for each foreign source, among the fortune categories.
PLAUSIBLE = {
    "german": "literature",
    "spanish": "love",
    "licences": "law",
    "docstrings": "computers",
    "package descriptions": "computers",
}
PER_SOURCE = 300  # the cached foreign pool: foreign(kind, 300) for each kind


def text_case(kind: str, seed: int):
    texts, y, classes = fortunes()
    x = embed(texts)
    pool = [t for source in FOREIGN for t in foreign(source, PER_SOURCE)]
    pool_x = embed(pool)
    source_of = np.repeat(np.arange(len(FOREIGN)), PER_SOURCE)
    rng = np.random.default_rng(seed)
    n = len(texts)
    if kind in ("grouped", "plausible"):
        per = int(round(0.05 * n / 0.95)) // len(FOREIGN)
        pick = np.concatenate(
            [
                rng.choice(np.flatnonzero(source_of == s), per, replace=False)
                for s in range(len(FOREIGN))
            ]
        )
    elif kind == "clean":
        pick = np.empty(0, dtype=np.int64)
    else:
        pick = rng.choice(len(pool), int(round(0.015 * n)), replace=False)
    if kind == "plausible":
        given = np.array([classes.index(PLAUSIBLE[FOREIGN[s]]) for s in source_of[pick]])
    else:
        given = rng.integers(0, len(classes), len(pick))
    features = np.vstack([x, pool_x[pick]])
    labels = np.concatenate([y, given])
    truth = np.r_[np.zeros(n, bool), np.ones(len(pick), bool)]
    return features, labels, truth, texts + [pool[i] for i in pick]


def digits_case(seed: int):
    digits = load_digits()
    x, y = digits.data, digits.target
    rng = np.random.default_rng(seed)
    keep = y != 9
    base_x, base_y = x[keep], y[keep]
    n = len(base_y)
    nines = rng.choice(np.flatnonzero(~keep), int(round(0.05 * n)), replace=False)
    noise = rng.uniform(0, 16, size=(int(round(0.01 * n)), x.shape[1]))
    features = np.vstack([base_x, x[nines], noise])
    labels = np.concatenate([base_y, rng.integers(0, 9, len(nines) + len(noise))])
    truth = np.r_[np.zeros(n, bool), np.ones(len(nines) + len(noise), bool)]
    return features.astype(np.float32), labels, truth, None


def measure(truth: np.ndarray, score: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    tp = int((flagged & truth).sum())
    precision = tp / max(1, int(flagged.sum()))
    recall = tp / max(1, int(truth.sum()))
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {
        "auroc": float(roc_auc_score(truth, score)) if truth.any() else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "flagged": int(flagged.sum()),
    }


def loupe(features, labels, texts):
    indices, sims = knn(features, k=10)
    found = find_outliers(indices=indices, sims=sims, vectors=features, labels=labels, texts=texts)
    return found.score, found.flagged, found.summary()


def datalab(features, labels):
    from cleanlab import Datalab

    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab.find_issues(features=features, issue_types={"outlier": {}})
    issues = lab.get_issues("outlier")
    # Datalab's outlier score is high for typical rows: 1 - score ranks outliers first.
    return 1 - issues["outlier_score"].to_numpy(), issues["is_outlier_issue"].to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cases", default="grouped,plausible,isolated,digits")
    args = parser.parse_args()
    rows = []
    for case in args.cases.split(","):
        for seed in range(args.seeds):
            features, labels, truth, texts = (
                digits_case(seed) if case == "digits" else text_case(case, seed)
            )
            started = time.perf_counter()
            score, flagged, summary = loupe(features, labels, texts)
            loupe_s = time.perf_counter() - started
            started = time.perf_counter()
            dl_score, dl_flagged = datalab(features, labels)
            datalab_s = time.perf_counter() - started
            row = {
                "case": case,
                "seed": seed,
                "samples": len(truth),
                "planted": int(truth.sum()),
                "loupe": {**measure(truth, score, flagged), "seconds": round(loupe_s, 2)},
                "datalab": {**measure(truth, dl_score, dl_flagged), "seconds": round(datalab_s, 2)},
                "threshold": summary["threshold"],
                "by_signal": summary["by_signal"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| case | samples | planted | tool | AUROC | precision | recall | F1 | flagged |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]
        for tool in ("loupe", "datalab"):
            mean = {
                key: float(np.mean([r[tool][key] for r in mine]))
                for key in ("auroc", "precision", "recall", "f1", "flagged")
            }
            print(
                f"| {case} | {mine[0]['samples']:,} | {mine[0]['planted']} | {tool} | "
                f"{mean['auroc']:.3f} | {mean['precision']:.2f} | {mean['recall']:.2f} | "
                f"{mean['f1']:.2f} | {mean['flagged']:.0f} |"
            )


if __name__ == "__main__":
    main()
