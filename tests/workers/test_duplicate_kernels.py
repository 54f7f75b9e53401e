"""The near-duplicate kernels: calibrated threshold, MinHash LSH over text, image hashes."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from workers.engine import duplicates as dup
from workers.engine.neighbours import knn

SENTENCES = [
    "The committee will meet on Thursday to discuss the budget for next year.",
    "A quiet river runs past the old mill, where children fish in the summer.",
    "Never trust a computer you cannot throw out of a window, said the engineer.",
    "Bread rises best in a warm kitchen, away from draughts and open doors.",
    "The library closes early on Sundays, so bring your books back by noon.",
    "Our cat sleeps on the radiator all winter and refuses to go outside.",
    "Mountains look closer than they are when the air is cold and clear.",
    "Please remember to water the tomatoes before you leave for the weekend.",
]


def _typos(text: str, seed: int, count: int = 3) -> str:
    rng = random.Random(seed)
    chars = list(text)
    for _ in range(count):
        i = rng.randrange(1, len(chars) - 1)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def test_copies_with_typos_are_found_and_say_their_jaccard():
    texts = [*SENTENCES, _typos(SENTENCES[2], 0), _typos(SENTENCES[5], 1)]
    pairs = dup.text_pairs(texts)
    assert set(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True)) == {(2, 8), (5, 9)}
    assert (pairs.score >= dup.TEXT_JACCARD).all() and (pairs.score < 1).all()
    how = dup.how_found(len(texts), [pairs])
    assert how[8][0].startswith("near-identical text (Jaccard 0.")
    assert how[0] == []


def test_unrelated_texts_and_short_templates_are_not_grouped():
    texts = [*SENTENCES, *(f"sample {i}" for i in range(30)), "", ""]
    assert len(dup.text_pairs(texts)) == 0


def test_identical_texts_in_a_large_bucket_form_one_group():
    texts = ["The same announcement went out to every customer on the list."] * 200
    groups = dup.groups_from_pairs(len(texts), [dup.text_pairs(texts)])
    assert groups == [list(range(200))]


def test_a_sentence_cut_from_a_long_text_is_still_a_copy():
    long = " ".join(SENTENCES[:4])
    cut = " ".join(SENTENCES[:3])
    assert dup.jaccard(long, cut) >= dup.TEXT_JACCARD
    assert len(dup.text_pairs([long, cut, SENTENCES[6]])) == 1


def _photo(seed: int, size: int = 160) -> np.ndarray:
    """A smooth random picture: blobs of colour, like a photo at low frequencies."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))


def _jpeg(picture: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def test_re_encoded_and_cropped_images_are_found():
    originals = [_photo(seed) for seed in range(12)]
    copies = [_jpeg(originals[0], 30), originals[1][15:-17, 17:-15], originals[2][::2, ::2]]
    hashes, readable = dup.image_hashes([*originals, *copies, b"not an image", None])
    assert readable.tolist() == [True] * 15 + [False, False]
    pairs = dup.image_pairs(hashes, readable)
    assert set(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True)) == {(0, 12), (1, 13), (2, 14)}
    assert dup.how_found(17, [pairs])[12][0].startswith("same picture (hash distance ")


def test_calibration_flags_almost_nothing_without_duplicates():
    rng = np.random.default_rng(0)
    for dim in (16, 64, 384):
        vectors = rng.normal(size=(3000, dim))
        indices, sims = knn(vectors, k=10)
        threshold = dup.calibrated_threshold(sims[:, 0])
        assert dup.EMBEDDING_LOW <= threshold <= dup.EMBEDDING_HIGH
        assert len(dup.embedding_pairs(indices, sims, threshold)) <= 3


def test_calibration_follows_the_data_and_ignores_its_copies():
    rng = np.random.default_rng(1)
    bulk = np.clip(rng.normal(0.5, 0.06, size=5000), -1, 1)
    clean = dup.calibrated_threshold(bulk)
    assert 0.9 <= clean < 0.85 + 0.1  # median 0.5 + 5 sigma 0.06 = 0.8, raised to the floor
    wide = dup.calibrated_threshold(np.clip(rng.normal(0.7, 0.04, size=5000), -1, 1))
    assert wide == pytest.approx(0.9, abs=0.02)
    # A tenth of the rows being exact copies moves the cut little.
    copied = np.r_[np.clip(rng.normal(0.7, 0.04, size=4500), -1, 1), np.ones(500)]
    assert dup.calibrated_threshold(copied) == pytest.approx(wide, abs=0.02)
    assert dup.calibrated_threshold(np.ones(10)) == dup.EMBEDDING_HIGH
    with pytest.raises(ValueError, match="reversed"):
        dup.calibrated_threshold(bulk, low=0.99, high=0.9)


def test_signals_join_into_one_group_with_each_reason():
    embedding = dup.Pairs("embedding", np.array([0]), np.array([1]), np.array([0.97]))
    text = dup.Pairs("text", np.array([1]), np.array([2]), np.array([0.86]))
    image = dup.Pairs("image", np.array([4]), np.array([5]), np.array([3.0]))
    pairs = [embedding, text, image]
    assert dup.groups_from_pairs(6, pairs) == [[0, 1, 2], [4, 5]]
    how = dup.how_found(6, pairs)
    assert how[1] == ["near-identical text (Jaccard 0.86)", "embedding similarity 0.97"]
    assert how[4] == ["same picture (hash distance 3)"] and how[3] == []


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="Jaccard threshold"):
        dup.text_pairs(SENTENCES, threshold=0)
    with pytest.raises(ValueError, match="bands"):
        dup.text_pairs(SENTENCES, num_perm=100, band_rows=3)
    with pytest.raises(ValueError, match="hashes shaped"):
        dup.image_pairs(np.zeros((3, 64), dtype=bool))


def test_the_text_threshold_rises_where_texts_come_from_templates():
    with_copy = [*SENTENCES, SENTENCES[2].replace("e", "a", 2)]
    pairs = dup.text_pairs(with_copy)
    assert len(pairs) == 1 and dup.text_threshold(pairs, len(with_copy)) == dup.TEXT_JACCARD
    # Every message is one of a few templates with another greeting and order number: each
    # has a neighbour sharing most of its shingles, so only a closer pair counts as a copy.
    greetings = ["hi", "hello", "hey there", "dear team,", "good morning"]
    asks = [
        "can you deliver on a saturday? i am not home during the week.",
        "i was charged twice for order {n}, please refund one of the payments.",
        "how do i change the delivery address for order {n}? it has not shipped yet.",
    ]
    texts = [f"{greetings[i % 5]} {asks[i % 3].format(n=100000 + 7919 * i)}" for i in range(60)]
    copy = texts[4].replace("delivery", "delivey")
    pairs = dup.text_pairs([*texts, copy])
    threshold = dup.text_threshold(pairs, len(texts) + 1)
    assert threshold == dup.TEXT_HIGH
    kept = pairs.at_least(threshold)
    assert (kept.score >= threshold).all() and len(kept) < len(pairs) / 4
    assert (4, 60) in set(zip(kept.a.tolist(), kept.b.tolist(), strict=True))
