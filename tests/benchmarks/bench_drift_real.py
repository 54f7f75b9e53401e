"""Drift monitoring on real text: false alarms on unshifted windows, and detection of a changed
class mix and of unseen categories, per signal and for the alert.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m tests.benchmarks.bench_drift_real [--seeds 50]
     [--window 400] [--unseen-share 0.1]

Training is 60% of the twelve fortune categories (tests/benchmarks/corpora.py, MiniLM
embeddings), stratified; windows are drawn from the other 40%, afresh for each seed:
unshifted (training's class mix); one class's share raised by 15 points (a class with enough
held-out rows, drawn per seed); 10% unseen categories (fortunes filed under people,
definitions, startrek and medicine, none of the twelve); both together. Each window is checked
with the default thresholds by workers.engine.monitor.window_check, with the class signals of
workers.engine.label_shift fitted on training's embeddings and labels. `--unseen-share` sets the
share of the mixed-in texts (0.10 by default). Before the windows, it prints how well a single
sample's new-kind scores tell held-out, unseen and other-kind texts from training (AUC).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from tests.benchmarks import corpora
from workers.engine import label_shift, monitor, neighbours

UNSEEN = (("people", 120), ("definitions", 120), ("startrek", 100), ("medicine", 100))
TRAIN_SHARE = 0.6
SHIFT = 0.15
UNSEEN_SHARE = 0.10


def unseen_texts(known: set[str]) -> list[str]:
    """A few hundred fortunes of categories outside the twelve (embedding them costs ~30 ms
    each once; then cached)."""
    rng = np.random.default_rng(0)
    out: list[str] = []
    for category, n in UNSEEN:
        texts = list(dict.fromkeys(corpora._fortune_file(corpora.FORTUNES / category)))
        picked = rng.choice(len(texts), size=min(n, len(texts)), replace=False)
        out += [texts[i] for i in sorted(picked.tolist())]
    return [t for t in out if t not in known]


def separability(
    classes: label_shift.ClassReference,
    *groups: np.ndarray,
    names=("held-out", "unseen", "other kind"),
) -> str:
    """How well one sample's scores tell each group from training: the AUC of the distance to the
    nearest class, the entropy and the new-kind score against training's out-of-fold values
    (0.5: not at all). This bounds what any test of a window's samples can see."""
    from sklearn.metrics import roc_auc_score

    lines = ["AUC of one sample's score against training's (distance / entropy / new-kind score):"]
    nulls = (classes.null, classes.unsure_null, classes.score_null)
    for name, rows in zip(names, groups, strict=True):
        far = label_shift.production_distances(classes, rows)
        unsure = label_shift.entropy(label_shift.production_probabilities(classes, rows))
        score = label_shift.new_kind_scores(classes.null, classes.unsure_null, far, unsure)
        aucs = [
            roc_auc_score(np.r_[np.zeros(len(null)), np.ones(len(v))], np.r_[null, v])
            for null, v in zip(nulls, (far, unsure, score), strict=True)
        ]
        lines.append(f"  {name}: " + " / ".join(f"{a:.3f}" for a in aucs))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--window", type=int, default=400)
    parser.add_argument(
        "--unseen-share", type=float, default=UNSEEN_SHARE, help="share of the mixed-in texts"
    )
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
    unseen_share = args.unseen_share
    n = args.window
    texts, y, names = corpora.fortunes()
    x = corpora.embed(texts)
    unseen = corpora.embed(unseen_texts(set(texts)))
    # Text of another kind altogether: fortunes in German, licences, docstrings and package
    # descriptions (300 of each, the sets the outlier benchmark plants).
    elsewhere = corpora.embed([t for kind in corpora.FOREIGN for t in corpora.foreign(kind, 300)])
    order = np.random.default_rng(1).permutation(len(x))
    train_rows, pool = [], []
    for c in range(len(names)):  # stratified split
        members = order[y[order] == c]
        cut = round(TRAIN_SHARE * len(members))
        train_rows += members[:cut].tolist()
        pool += members[cut:].tolist()
    train, pool_rows = np.sort(train_rows), np.sort(pool)
    started = time.monotonic()
    with threadpool_limits(1):
        clusters = neighbours.clusters(x[train], n_clusters=cluster_count(len(train)))
        ref = monitor.reference(x[train], clusters)
        classes = label_shift.class_reference(x[train], [names[i] for i in y[train]])
    print(
        f"training {len(train)} fortunes in {len(names)} categories, held-out pool "
        f"{len(pool_rows)}, unseen {len(unseen)}; reference built in "
        f"{time.monotonic() - started:.1f} s; out-of-fold accuracy "
        f"{np.mean(classes.predicted == classes.labels):.0%}; new-kind nominal "
        f"{classes.nominal:.1%}, recall of a left-out class {classes.recall:.1%}"
    )
    with threadpool_limits(1):
        print(separability(classes, x[pool_rows], unseen, elsewhere))
    pool_y = y[pool_rows]
    prior = np.bincount(y[train], minlength=len(names)) / len(train)
    shiftable = [
        c
        for c in range(len(names))
        if np.count_nonzero(pool_y == c) >= round((prior[c] + SHIFT) * n)
    ]

    def window(rng, *, shift: bool, new: float, source: np.ndarray) -> np.ndarray:
        k = round(new * n)
        m = n - k
        if shift:
            c = int(rng.choice(shiftable))
            n_c = round((prior[c] + SHIFT) * m)
            inside = rng.choice(pool_rows[pool_y == c], n_c, replace=False)
            outside = rng.choice(pool_rows[pool_y != c], m - n_c, replace=False)
            rows = np.concatenate([inside, outside])
        else:
            rows = rng.choice(pool_rows, m, replace=False)
        parts = [x[rows]]
        if k:
            parts.append(source[rng.choice(len(source), k, replace=False)])
        return np.vstack(parts)

    settings = [
        ("unshifted", False, 0.0, unseen),
        (f"one class +{SHIFT * 100:.0f} points", True, 0.0, unseen),
        (f"{unseen_share:.0%} unseen categories", False, unseen_share, unseen),
        (f"+{SHIFT * 100:.0f} points and {unseen_share:.0%} unseen", True, unseen_share, unseen),
        (f"{unseen_share:.0%} text of another kind", False, unseen_share, elsewhere),
        (
            f"+{SHIFT * 100:.0f} points and {unseen_share:.0%} another kind",
            True,
            unseen_share,
            elsewhere,
        ),
    ]
    print(
        f"\n{args.seeds} windows of {n} per setting, default thresholds; share of windows in "
        "which each signal crossed, and the alert (any signal)\n"
    )
    heads = ["test", "coverage", "cluster shift", "label shift", "new kind"]
    print("| setting | alert | " + " | ".join(heads) + " | label-shift p < 0.01 | seconds |")
    print("| --- " * (len(heads) + 4) + "|")
    with threadpool_limits(1):
        for name, shift, new, source in settings:
            started = time.monotonic()
            counts = dict.fromkeys(monitor.SIGNALS, 0)
            alerts = significant = 0
            for seed in range(args.seeds):
                rng = np.random.default_rng(seed)
                result = monitor.window_check(
                    None,
                    None,
                    window(rng, shift=shift, new=new, source=source),
                    ref=ref,
                    classes=classes,
                    seed=seed,
                )
                alerts += result["alert"]
                significant += result["label_shift"]["p_value"] < 0.01
                for crossed in result["crossed"]:
                    counts[crossed["signal"]] += 1
            print(
                f"| {name} | {alerts / args.seeds:.0%} | "
                + " | ".join(f"{counts[s] / args.seeds:.0%}" for s in monitor.SIGNALS)
                + f" | {significant / args.seeds:.0%} | {time.monotonic() - started:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
