"""Classification metrics of a model run's probabilities against the given labels."""

from __future__ import annotations

import numpy as np


def split_metrics(
    probs: np.ndarray, labels: np.ndarray, splits: np.ndarray
) -> dict[str, dict[str, float]]:
    """Accuracy and macro F1 per split (and over all), from (n, k) probabilities and label indices.

    Rows whose label is negative (unlabelled) are left out; a split with no labelled row is absent.
    """
    # Loaded here rather than at the top so that importing the engine stays cheap.
    from sklearn.metrics import accuracy_score, f1_score

    predicted = probs.argmax(axis=1)
    labelled = labels >= 0
    out: dict[str, dict[str, float]] = {}
    groups = {str(s): splits == s for s in np.unique(splits)} | {
        "all": np.ones(len(labels), dtype=bool)
    }
    for name, rows in groups.items():
        rows = rows & labelled
        if not rows.any():
            continue
        y, p = labels[rows], predicted[rows]
        out[name] = {
            "accuracy": round(float(accuracy_score(y, p)), 4),
            "macro_f1": round(
                float(f1_score(y, p, average="macro", labels=np.unique(y), zero_division=0)), 4
            ),
            "n": int(rows.sum()),
        }
    return out
