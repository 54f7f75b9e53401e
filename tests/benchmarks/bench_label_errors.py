"""Label-error detection benchmark: Loupe's kernels against cleanlab on injected noise.

Run: .venv/bin/python -m tests.benchmarks.bench_label_errors [--seeds 3] [--method cleaning]
     [--datasets fortunes] [--kinds uniform,asymmetric,human] [--probs given]
Needs cleanlab in the venv (benchmark only; never imported by workers/).

Noise kinds: `uniform` flips a row to a random other class, `asymmetric` to the class with the
nearest centroid, `human` (instance-dependent) draws the rows along a cross-validated
classifier's confusion — a row is picked with probability proportional to the classifier's
probability of its most likely other class, and flipped to that class — as a tired annotator
would mislabel the ambiguous rows towards the plausible class.

Probabilities: `cv` (default) is what a scoring run computes from the features alone, against
cleanlab on cross-validated logistic regression. `given` hands both sides the same out-of-fold
probabilities of a different model (gradient boosting on the tabular sets, logistic regression
on the text), as a scoring run with a model run: cleanlab flags from them alone, Loupe combines
them with its own cross-validation over the features it also has.
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
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler

from workers.engine.labels import (
    CrossValidation,
    find_label_issues,
    label_errors,
    suggested_label,
)

RATES = (0.05, 0.10, 0.20, 0.30)
KINDS = ("uniform", "asymmetric")
ALL_KINDS = ("uniform", "asymmetric", "human")
TABULAR = ("digits", "wine", "breast_cancer", "iris", "synthetic6")
TEXT = ("fortunes",)


def datasets(names: tuple[str, ...] = TABULAR) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Bundled scikit-learn sets (no download), one synthetic set, features standardised; and
    the fortunes corpus as MiniLM embeddings (tests/benchmarks/corpora.py)."""
    loaders = {
        "digits": load_digits,
        "wine": load_wine,
        "breast_cancer": load_breast_cancer,
        "iris": load_iris,
    }
    out = {}
    for name in names:
        if name in loaders:
            data = loaders[name]()
            x, y = StandardScaler().fit_transform(data.data), data.target
        elif name == "synthetic6":
            x, y = make_classification(
                n_samples=2000,
                n_features=40,
                n_informative=12,
                n_classes=6,
                n_clusters_per_class=2,
                class_sep=1.5,
                random_state=0,
            )
            x = StandardScaler().fit_transform(x)
        elif name == "fortunes":
            from tests.benchmarks.corpora import embed, fortunes

            texts, y, _classes = fortunes()
            x = embed(texts)
        else:
            raise SystemExit(f"unknown dataset {name!r}; one of {', '.join(TABULAR + TEXT)}")
        out[name] = (np.asarray(x, dtype=np.float64), np.asarray(y).astype(int))
    return out


def confusable(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each class's nearest other class by centroid: the flip target for asymmetric noise."""
    k = int(y.max()) + 1
    centres = np.stack([x[y == c].mean(axis=0) for c in range(k)])
    d = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    return np.argmin(d, axis=1)


def clean_confusion(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Out-of-fold probabilities of a logistic regression on the clean labels: where a human
    would hesitate (the source of `human` noise)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_val_predict(
            LogisticRegression(max_iter=1000), x, y, cv=5, method="predict_proba"
        )


def inject(
    y: np.ndarray,
    *,
    rate: float,
    kind: str,
    target: np.ndarray,
    seed: int,
    confusion: np.ndarray | None = None,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = int(y.max()) + 1
    noisy = y.copy()
    size = int(round(rate * len(y)))
    if kind == "human":
        assert confusion is not None
        other = confusion.copy()
        other[np.arange(len(y)), y] = 0.0
        weight = other.max(axis=1) + 1e-9
        flip = rng.choice(len(y), size=size, replace=False, p=weight / weight.sum())
        noisy[flip] = np.argmax(other[flip], axis=1)
        return noisy
    flip = rng.choice(len(y), size=size, replace=False)
    if kind == "uniform":
        shift = rng.integers(1, k, size=len(flip))
        noisy[flip] = (y[flip] + shift) % k
    else:
        noisy[flip] = target[y[flip]]
    return noisy


def given_probabilities(x: np.ndarray, noisy: np.ndarray, *, text: bool, seed: int) -> np.ndarray:
    """Out-of-fold probabilities of a model other than Loupe's, trained on the noisy labels:
    gradient boosting on tabular features, logistic regression on text embeddings."""
    if text:
        model = LogisticRegression(max_iter=1000)
    else:
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(
            max_iter=40, learning_rate=0.2, max_leaf_nodes=15, random_state=seed
        )
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_val_predict(model, x, noisy, cv=folds, method="predict_proba")


def scores(
    found: np.ndarray,
    truth: np.ndarray,
    ranking: np.ndarray,
    suggested: np.ndarray,
    clean: np.ndarray,
    common: np.ndarray,
) -> dict[str, float]:
    tp = int((found & truth).sum())
    precision = tp / max(int(found.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    top = np.argsort(ranking, kind="stable")[: int(truth.sum())]
    p_at_k = float(truth[top].mean()) if len(top) else 0.0
    hit = found & truth
    # Of the errors found, the share whose suggested label is the true one.
    right = float((suggested[hit] == clean[hit]).mean()) if tp else float("nan")
    # The same on the errors both sides found, so that neither is scored on harder rows.
    both = float((suggested[common] == clean[common]).mean()) if common.any() else float("nan")
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "p_at_k": p_at_k,
        "suggested": right,
        "sugg_both": both,
    }


def self_confidence(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return probs[np.arange(len(labels)), labels]


def detect(x: np.ndarray, noisy: np.ndarray, *, seed: int, method: str, given=None):
    """Loupe's flags, probabilities and suggestions: what a scoring run computes from features
    (`cleaning`, with the model run's probabilities when `given`), or one confident-learning
    method on the first round's probabilities."""
    if method == "cleaning":
        found = label_errors(x, noisy, seed=seed, given=given)
        return found.issues, found.probs, found.suggested(noisy)
    if given is not None:
        issues = find_label_issues(given, noisy, method=method, features=x)
        return issues, given, suggested_label(given, noisy, issues=issues)
    cv = CrossValidation(x, noisy, seed=seed)
    parts = [cv.part(i) for i in range(cv.n_parts)]
    first = cv.label_errors(
        {key: cv.combine([p[key] for p in parts]) for key in parts[0]}, rounds=0
    )
    issues = find_label_issues(first.probs, noisy, method=method, features=x)
    return issues, first.probs, suggested_label(first.probs, noisy, issues=issues)


def run(
    seeds: int,
    method: str,
    *,
    first_seed: int = 0,
    rates=RATES,
    names: tuple[str, ...] = TABULAR,
    kinds: tuple[str, ...] = KINDS,
    probs: str = "cv",
) -> dict:
    from cleanlab.filter import find_label_issues as cl_find

    rows = []
    for name, (x, y) in datasets(names).items():
        target = confusable(x, y)
        confusion = clean_confusion(x, y) if "human" in kinds else None
        for kind in kinds:
            for rate in rates:
                for seed in range(first_seed, first_seed + seeds):
                    noisy = inject(
                        y, rate=rate, kind=kind, target=target, seed=seed, confusion=confusion
                    )
                    truth = noisy != y
                    given = None
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        if probs == "given":
                            given = given_probabilities(x, noisy, text=name in TEXT, seed=seed)
                            base_probs = given
                        else:
                            base_probs = cross_val_predict(
                                LogisticRegression(max_iter=1000),
                                x,
                                noisy,
                                cv=5,
                                method="predict_proba",
                            )
                        base = cl_find(noisy, base_probs)
                    ours, ours_probs, ours_suggested = detect(
                        x, noisy, seed=seed, method=method, given=given
                    )
                    common = ours & base & truth
                    rows.append(
                        {
                            "dataset": name,
                            "kind": kind,
                            "rate": rate,
                            "seed": seed,
                            "ours": scores(
                                ours,
                                truth,
                                self_confidence(ours_probs, noisy),
                                ours_suggested,
                                y,
                                common,
                            ),
                            "cleanlab": scores(
                                base,
                                truth,
                                self_confidence(base_probs, noisy),
                                np.argmax(base_probs, axis=1),
                                y,
                                common,
                            ),
                        }
                    )
    return summarise(rows)


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not np.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


def summarise(rows: list[dict]) -> dict:
    print(
        f"{'dataset':14} {'noise':10} {'rate':>5}   ours P/R/F1/P@k/sugg/sugg-both"
        "    cleanlab P/R/F1/P@k/sugg/sugg-both"
    )
    cases: dict[tuple, list[dict]] = {}
    for row in rows:
        cases.setdefault((row["dataset"], row["kind"], row["rate"]), []).append(row)
    worst_gap = np.inf
    by_group: dict[tuple, list[dict]] = {}
    for (name, kind, rate), group in cases.items():
        by_group.setdefault((name, kind), []).extend(group)
        means = {
            who: {m: _mean([g[who][m] for g in group]) for m in group[0][who]}
            for who in ("ours", "cleanlab")
        }
        worst_gap = min(worst_gap, means["ours"]["f1"] - means["cleanlab"]["f1"])
        print(
            f"{name:14} {kind:10} {rate:5.2f}   "
            + " ".join(f"{means['ours'][m]:.3f}" for m in means["ours"])
            + "   "
            + " ".join(f"{means['cleanlab'][m]:.3f}" for m in means["cleanlab"])
        )
    print("per dataset and noise kind (mean over rates and seeds):")
    for (name, kind), group in by_group.items():
        means = {
            who: {m: _mean([g[who][m] for g in group]) for m in group[0][who]}
            for who in ("ours", "cleanlab")
        }
        print(
            f"{name:14} {kind:10}         "
            + " ".join(f"{means['ours'][m]:.3f}" for m in means["ours"])
            + "   "
            + " ".join(f"{means['cleanlab'][m]:.3f}" for m in means["cleanlab"])
        )
    overall = {
        who: {m: round(_mean([r[who][m] for r in rows]), 4) for m in rows[0][who]}
        for who in ("ours", "cleanlab")
    }
    overall["f1_gain"] = round(overall["ours"]["f1"] - overall["cleanlab"]["f1"], 4)
    overall["suggested_gain"] = round(
        overall["ours"]["suggested"] - overall["cleanlab"]["suggested"], 4
    )
    overall["sugg_both_gain"] = round(
        overall["ours"]["sugg_both"] - overall["cleanlab"]["sugg_both"], 4
    )
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
    parser.add_argument(
        "--datasets",
        default=",".join(TABULAR),
        help=f"Comma-separated, of {', '.join(TABULAR + TEXT)}.",
    )
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"Noise kinds, of {', '.join(ALL_KINDS)}."
    )
    parser.add_argument(
        "--probs",
        choices=("cv", "given"),
        default="cv",
        help="cv: each side cross-validates its own model; given: both get another model's "
        "out-of-fold probabilities (Loupe also has the features).",
    )
    args = parser.parse_args()
    kinds = tuple(args.kinds.split(","))
    for kind in kinds:
        if kind not in ALL_KINDS:
            parser.error(f"unknown noise kind {kind!r}; one of {', '.join(ALL_KINDS)}")
    started = time.perf_counter()
    rates = tuple(float(r) for r in args.rates.split(","))
    overall = run(
        args.seeds,
        args.method,
        first_seed=args.first_seed,
        rates=rates,
        names=tuple(args.datasets.split(",")),
        kinds=kinds,
        probs=args.probs,
    )
    overall["method"] = args.method
    overall["probs"] = args.probs
    overall["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(overall))


if __name__ == "__main__":
    main()
