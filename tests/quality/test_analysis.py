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
