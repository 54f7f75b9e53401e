"""The outlier kernels: groups from another source, samples alone, and clean data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from workers.engine.neighbours import knn
from workers.engine.outliers import (
    GROUP,
    LANGUAGE,
    NEIGHBOURS,
    adaptive_threshold,
    common_word_share,
    find_outliers,
    robust_z,
)


def blobs(n_classes: int = 6, per_class: int = 200, dim: int = 24, seed: int = 0):
    """Unit vectors in `n_classes` loose classes around random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    x = np.concatenate([c + 0.5 * rng.normal(size=(per_class, dim)) for c in centres])
    y = np.repeat(np.arange(n_classes), per_class)
    return x, y, rng


def run(x: np.ndarray, y: np.ndarray, **kwargs):
    indices, sims = knn(x, k=10)
    return find_outliers(indices=indices, sims=sims, vectors=x, labels=y, **kwargs)


def test_a_dense_group_from_elsewhere_is_found_though_its_neighbours_are_close() -> None:
    x, y, rng = blobs()
    # 60 samples (5 %) from one other source: tight among themselves, away from every class,
    # each given an existing class at random.
    source = 2.5 * rng.normal(size=x.shape[1])
    group = source + 0.3 * rng.normal(size=(60, x.shape[1]))
    x = np.vstack([x, group])
    y = np.concatenate([y, rng.integers(0, 6, 60)])
    truth = np.r_[np.zeros(len(x) - 60, bool), np.ones(60, bool)]

    found = run(x, y)

    # The nearest-neighbour distance alone ranks the group as ordinary or better...
    assert roc_auc_score(truth, found.signals[NEIGHBOURS]) < 0.6
    # ...the combined score ranks it on top, and the threshold takes most of it in.
    assert roc_auc_score(truth, found.score) > 0.95
    assert found.flagged[truth].mean() >= 0.8
    assert found.flagged[~truth].mean() <= 0.02
    member = int(np.flatnonzero(truth & found.flagged)[0])
    assert found.signal[member] == GROUP
    assert found.reason(member).startswith("part of a group of ")
    assert found.summary()["by_signal"][GROUP] >= 40


def test_samples_alone_are_still_found() -> None:
    x, y, rng = blobs(seed=1)
    # Eight samples, each far out in its own direction.
    lonely = 6 * rng.normal(size=(8, x.shape[1]))
    x = np.vstack([x, lonely])
    y = np.concatenate([y, rng.integers(0, 6, 8)])
    truth = np.r_[np.zeros(len(x) - 8, bool), np.ones(8, bool)]

    found = run(x, y)

    assert roc_auc_score(truth, found.score) > 0.95
    assert found.flagged[truth].sum() >= 6
    assert found.flagged[~truth].mean() <= 0.01
    assert all(
        not found.reason(int(i)).startswith("part of a group") for i in np.flatnonzero(truth)
    )


def test_clean_data_flags_few() -> None:
    x, y, _ = blobs(seed=2)
    found = run(x, y)
    assert found.flagged.mean() <= 0.01
    assert 0 <= found.score.min() and found.score.max() <= 1


def test_text_in_another_language_is_named() -> None:
    rng = np.random.default_rng(3)
    function = (
        "the of and a to in is it that for was on with as at by this i you he she we they "
        "not but or be have had are were from his her my your an all so if what when there"
    ).split()
    content = [f"word{i}" for i in range(2000)]
    zipf = 1 / np.arange(1, 2001)
    german = "der die und das ist nicht ein zu mit sich auf für dem den".split()

    def english() -> str:
        words = (
            rng.choice(function, 6).tolist() + rng.choice(content, 6, p=zipf / zipf.sum()).tolist()
        )
        return " ".join(rng.permutation(words).tolist())

    texts = [english() for _ in range(400)] + [  # 1 % German
        " ".join(rng.choice(german, size=12).tolist()) for _ in range(4)
    ]
    share = common_word_share(texts)
    assert share[400:].max() < share[:400].min()
    # Embeddings that place the German texts together, as a sentence encoder does, but no
    # further from the English ones than the English are from one another.
    x = rng.normal(size=(len(texts), 16))
    x[400:] = x[400] + 0.3 * rng.normal(size=(4, 16))
    indices, sims = knn(x, k=10)
    found = find_outliers(indices=indices, sims=sims, texts=texts)
    assert found.flagged[400:].all() and found.flagged[:400].sum() <= 4
    assert set(found.signal[400:]) == {LANGUAGE}
    assert found.reason(400).startswith("not in the data set's language")


def test_threshold_adapts_to_the_data() -> None:
    rng = np.random.default_rng(4)
    clean = rng.normal(size=5000)
    assert adaptive_threshold(clean) > 3.5  # at most a stray sample or two
    contaminated = np.concatenate([clean, rng.normal(5, 0.5, 250)])
    cut = adaptive_threshold(contaminated)
    assert 2.5 <= cut < 4
    assert (contaminated[5000:] >= cut).mean() > 0.9
    assert adaptive_threshold(np.array([])) == math.inf


def test_robust_z_and_bad_input() -> None:
    z = robust_z(np.array([1.0, 2.0, 3.0, 4.0, 100.0, np.nan]))
    assert z[5] == 0 and z[4] > 50 and abs(z[2]) < 1e-9
    with pytest.raises(ValueError, match="reference mask"):
        robust_z(np.ones(3), np.ones(4, bool))
    with pytest.raises(ValueError, match="shape"):
        find_outliers(indices=np.zeros((3, 2), int), sims=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="texts"):
        find_outliers(indices=np.zeros((3, 2), int), sims=np.zeros((3, 2)), texts=["a"])


def test_templated_text_in_the_same_language_is_not_called_foreign() -> None:
    """Messages from templates share nearly all their words with the rest; a template naming
    more products shares half, which a robust z-score on so narrow a spread would call foreign."""
    rng = np.random.default_rng(5)
    ask = "hello can you tell me where my order is i have been waiting for it".split()
    letters = np.array(list("bcdfghjklmnpqrstvwxz"))
    rare = ["".join(rng.choice(letters, 7)) for _ in range(3000)]  # names: each in a text or two

    def message(own: int, names: int) -> str:
        words = rng.choice(ask, own, replace=False).tolist() + rng.choice(rare, names).tolist()
        return " ".join(rng.permutation(words).tolist())

    texts = [message(14, int(rng.integers(0, 3))) for _ in range(380)]
    texts += [message(7, 7) for _ in range(20)]
    share = common_word_share(texts)
    assert np.median(share[380:]) == 0.5 and np.median(share[:380]) > 0.85
    x = rng.normal(size=(len(texts), 16))
    x[380:] = x[380] + 0.3 * rng.normal(size=(20, 16))  # the product messages sit together
    indices, sims = knn(x, k=10)
    found = find_outliers(indices=indices, sims=sims, texts=texts)
    assert LANGUAGE not in set(found.signal[found.flagged])
