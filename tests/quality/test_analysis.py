"""The analysis of a scoring run is pure functions over arrays: tested here without a database."""

import numpy as np

from apps.quality.pipeline import analysis
from apps.quality.pipeline.analysis import Arrays


def _arrays(n: int = 40) -> Arrays:
    labels = np.arange(n) % 2
    probs = np.full((n, 2), 0.02)
    probs[np.arange(n), labels] = 0.98
    probs[0] = [0.01, 0.99]  # labelled 0; the model is sure it is 1
    return Arrays(
        ids=np.arange(1, n + 1, dtype=np.int64),
        labels=labels.astype(np.int64),
        splits=np.array(["train"] * n),
        classes=["cat", "dog"],
        probs=probs,
        probs_source="model run “m”",
        metadata=[{"source": "web" if i % 4 else "book"} for i in range(n)],
    )


def test_a_label_the_model_contradicts_is_flagged_with_its_reason():
    data = _arrays()
    found = analysis.Findings.start(data)
    analysis.analyse_labels(data, found)
    analysis.analyse_slices(data, found)
    analysis.analyse_neighbours(data, found)
    flags = analysis.flag_samples(found)

    assert found.scores["likely_mislabeled"][0]
    assert "mislabeled" in flags[0]
    assert found.reasons[0][0].startswith("labelled cat; the model says dog at 0.99")
    assert found.summary["samples"] == 40
    assert found.summary["flag_counts"]["mislabeled"] == int(
        found.scores["likely_mislabeled"].sum()
    )
    assert data.skipped["neighbours"] == "no embeddings"


def test_without_probabilities_label_errors_are_skipped_not_guessed():
    data = _arrays()
    data.probs, data.probs_source = None, ""
    found = analysis.Findings.start(data)
    analysis.analyse_labels(data, found)
    analysis.analyse_slices(data, found)

    assert "likely_mislabeled" not in found.scores
    assert set(data.skipped) == {"label_errors", "weak_slices"}
    assert found.summary["label_distribution"]["train"]["counts"] == {"cat": 20, "dog": 20}


def test_a_model_runs_probabilities_join_the_cross_validation_over_embeddings():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    from apps.quality.pipeline.chunks import _needs_cross_validation
    from workers.engine.labels import CrossValidation

    rng = np.random.default_rng(0)
    n, k = 360, 3
    clean = np.arange(n) % k
    vectors = (rng.standard_normal((k, 48)) * 4.0)[clean] + rng.standard_normal((n, 48))
    labels = clean.copy()
    flipped = rng.choice(n, size=36, replace=False)
    labels[flipped] = (clean[flipped] + 1) % k
    # The model run saw a single column: honest, out of fold, and weak.
    probs = cross_val_predict(
        LogisticRegression(max_iter=1000), vectors[:, :1], labels, cv=5, method="predict_proba"
    )
    data = Arrays(
        ids=np.arange(1, n + 1, dtype=np.int64),
        labels=labels,
        splits=np.array(["train"] * n),
        classes=["a", "b", "c"],
        vectors=vectors.astype(np.float32),
        has_vector=np.ones(n, dtype=bool),
        probs=probs,
        probs_source="model run “m”",
    )
    assert _needs_cross_validation(data)
    cv = CrossValidation(data.vectors, data.labels)
    parts = [cv.part(i) for i in range(cv.n_parts)]
    found = analysis.Findings.start(data)
    analysis.analyse_labels(data, found, cv, {key: [p[key] for p in parts] for key in parts[0]})

    assert found.summary["probabilities"].startswith(
        "model run “m”; label errors combined with logistic regression"
    )
    assert data.probs is probs  # margins and boundaries stay the model's own
    flags = found.scores["likely_mislabeled"]
    truth = labels != clean
    assert (flags & truth).sum() >= 0.9 * truth.sum() and (flags & ~truth).sum() <= 3
    hits = flags & truth
    assert (found.scores["suggested"][hits] == clean[hits]).mean() > 0.95
    assert "likely a wrong label" in found.reasons[int(np.flatnonzero(hits)[0])][0]
