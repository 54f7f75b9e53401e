import numpy as np

from workers.engine.metrics import split_metrics


def test_accuracy_and_macro_f1_per_split_on_a_known_answer():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.5, 0.5]])
    labels = np.array([0, 1, 1, 1, -1])  # the last is unlabelled
    splits = np.array(["train", "train", "test", "test", "test"])
    metrics = split_metrics(probs, labels, splits)
    assert metrics["train"] == {"accuracy": 1.0, "macro_f1": 1.0, "n": 2}
    # test: truth 1, 1 ; predicted 0, 1 → accuracy 0.5; F1 over the labels present (class 1) = 2/3
    assert metrics["test"] == {"accuracy": 0.5, "macro_f1": 0.6667, "n": 2}
    assert metrics["all"]["n"] == 4 and metrics["all"]["accuracy"] == 0.75


def test_a_split_without_labels_is_left_out():
    metrics = split_metrics(np.array([[0.5, 0.5]]), np.array([-1]), np.array(["production"]))
    assert metrics == {}
