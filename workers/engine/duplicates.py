"""Near-duplicate kernels: a calibrated embedding threshold, MinHash LSH over text and
perceptual hashes of images, joined into one set of duplicate groups with the reason each
pair was linked."""

from __future__ import annotations

import io
import os
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.engine.embeddings import ImageInput, _array_to_image, _to_rgb
from workers.engine.neighbours import NeighbourIndex

# Embedding threshold: a row's similarity to its nearest neighbour is a copy when it lies far
# on the upper side of the dataset's own distribution of those similarities: above the median
# by EMBEDDING_Z standard deviations (measured on the lower side), kept within
# [EMBEDDING_LOW, EMBEDDING_HIGH]. Below the floor, texts embedded by MiniLM are
# related rather than copies; above the ceiling nothing but a copy lies in any space we use.
EMBEDDING_Z = 5.0
LOWER_SIGMA_QUANTILE = 0.1587
EMBEDDING_LOW = 0.90
EMBEDDING_HIGH = 0.98

# Text: character 5-grams of the lower-cased text with runs of white space collapsed; a pair
# is a copy at Jaccard similarity >= the dataset's text threshold. On the fortunes corpus
# random pairs stay below 0.1 and copies with a typo every 40 characters keep 0.77 and more,
# so TEXT_JACCARD serves. Messages written from templates ("can you deliver on a saturday?"
# with another greeting) share 0.6-0.8 of their shingles without being copies of one
# another: the threshold is calibrated like the embeddings' (see text_threshold), from
# TEXT_JACCARD up to TEXT_HIGH.
SHINGLE = 5
TEXT_JACCARD = 0.5
TEXT_HIGH = 0.8
# Shorter texts are left to the embedding pass: "sample 12" and "sample 13" share most of
# their few shingles without being copies.
TEXT_MIN_CHARS = 25
NUM_PERM = 128
# LSH bands of BAND_ROWS MinHash values each (NUM_PERM / BAND_ROWS bands): a pair at Jaccard
# 0.5 shares a band with probability 0.87, at 0.6 0.98, at 0.1 0.003.
BAND_ROWS = 4
# A bucket of more rows than this (a template repeated thousands of times) links each row to
# the next BUCKET_WINDOW rows only, in a shuffled order: enough to chain it into one group
# without testing every pair.
BUCKET_ALL_PAIRS = 32
BUCKET_WINDOW = 8

# Images: a 64-bit DCT perceptual hash of the whole picture and of its central CROP_SHARE;
# two pictures are the same at Hamming distance <= IMAGE_DISTANCE between any of them.
HASH_BITS = 64
IMAGE_DISTANCE = 6
CROP_SHARE = 0.8
IMAGE_K = 10
VIEWS = 3  # the whole picture, its centre, the picture with its border trimmed

SIGNALS = ("text", "image", "embedding")


@dataclass(frozen=True)
class Pairs:
    """Linked pairs of rows (a < b), how they were found and how strongly: Jaccard for text,
    Hamming distance for images, cosine similarity for embeddings."""

    signal: str
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray

    @classmethod
    def empty(cls, signal: str) -> Pairs:
        return cls(signal, np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))

    def __len__(self) -> int:
        return len(self.a)

    def at_least(self, threshold: float) -> Pairs:
        """The pairs scoring `threshold` or more (Jaccard, cosine)."""
        keep = self.score >= threshold
        return Pairs(self.signal, self.a[keep], self.b[keep], self.score[keep])


def _pairs(signal: str, a: np.ndarray, b: np.ndarray, score: np.ndarray) -> Pairs:
    """Ordered (a < b), without self pairs, each pair once with its best score."""
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    keep = lo != hi
    lo, hi, score = lo[keep], hi[keep], np.asarray(score, dtype=np.float64)[keep]
    better = np.argsort(score if signal == "image" else -score, kind="stable")
    lo, hi, score = lo[better], hi[better], score[better]
    _, first = np.unique(np.stack([lo, hi], axis=1), axis=0, return_index=True)
    first.sort()
    return Pairs(signal, lo[first], hi[first], score[first])


# ---------------------------------------------------------------------------------------------
# Embeddings


def calibrated_threshold(
    nearest: np.ndarray,
    *,
    z: float = EMBEDDING_Z,
    low: float = EMBEDDING_LOW,
    high: float = EMBEDDING_HIGH,
) -> float:
    """The cosine similarity from which a pair is a copy, from each row's similarity to its
    nearest neighbour: median + z robust standard deviations, within [low, high].

    The standard deviation is the distance from the median down to the 15.87th percentile
    (one sigma below the median of a normal distribution): the lower side holds no copies, so
    neither median nor spread move much when many rows have one, and the cut sits on the
    outlier side of what unrelated rows look like in this embedding. Datalab derives its cut
    likewise from the median nearest-neighbour distance (a fixed 0.13 of it)."""
    s = np.asarray(nearest, dtype=np.float64)
    if not low <= high:
        raise ValueError(f"the threshold's bounds are reversed: {low} > {high}")
    # Rows already linked at the ceiling are copies, not part of the bulk to measure.
    s = s[np.isfinite(s) & (s < high)]
    if s.size < 3:
        return float(high)
    median = float(np.median(s))
    # The spread from the lower side only: copies crowd the upper side and would widen it.
    spread = median - float(np.quantile(s, LOWER_SIGMA_QUANTILE))
    return float(min(high, max(low, median + z * spread)))


def embedding_pairs(indices: np.ndarray, sims: np.ndarray, threshold: float) -> Pairs:
    """The pairs of a kNN table (row i's neighbours in row i) at cosine >= threshold."""
    rows, cols = np.nonzero((sims >= threshold) & (indices >= 0))
    return _pairs("embedding", rows, indices[rows, cols], sims[rows, cols])


# ---------------------------------------------------------------------------------------------
# Text


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def _shingles(text: str, k: int = SHINGLE) -> set[bytes]:
    data = text.encode("utf-8")
    if len(data) <= k:
        return {data}
    return {data[i : i + k] for i in range(len(data) - k + 1)}


def jaccard(a: str, b: str) -> float:
    """Jaccard similarity of two texts' character shingles (after normalising case and space)."""
    x, y = _shingles(_normal(a)), _shingles(_normal(b))
    return len(x & y) / len(x | y) if x or y else 1.0


def minhash_signatures(
    texts: Sequence[str], *, num_perm: int = NUM_PERM, seed: int = 1
) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures of the texts' character shingles (datasketch's
    "affine32" scheme: 32-bit hash values, half the memory of 64-bit ones)."""
    # datasketch is loaded here: the web process imports this module for its constants.
    from datasketch import MinHash

    template = MinHash(num_perm=num_perm, seed=seed, hashfunc=zlib.crc32, scheme="affine32")
    out = np.empty((len(texts), num_perm), dtype=np.uint32)
    for row, text in enumerate(texts):
        m = MinHash(
            num_perm=num_perm,
            hashfunc=zlib.crc32,
            permutations=template.permutations,
            scheme="affine32",
        )
        m.update_batch(list(_shingles(text)))
        out[row] = m.hashvalues
    return out


def _band_candidates(signatures: np.ndarray, band_rows: int, seed: int) -> np.ndarray:
    """Candidate pairs (m, 2): rows that agree on every value of at least one band."""
    n, perms = signatures.shape
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 2**63, size=band_rows, dtype=np.uint64) | np.uint64(1)
    found: list[np.ndarray] = []
    for start in range(0, perms - band_rows + 1, band_rows):
        with np.errstate(over="ignore"):  # the band key wraps around 2^64 on purpose
            keys = (signatures[:, start : start + band_rows].astype(np.uint64) * weights).sum(
                axis=1
            )
        order = rng.permutation(n)
        order = order[np.argsort(keys[order], kind="stable")]
        sorted_keys = keys[order]
        # Pairs up to `window` apart in the sorted order, within the same key: every pair of
        # a small bucket, a chain of windows through a large one.
        bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
        sizes = np.diff(np.r_[0, bounds, n])
        bucket_of = np.repeat(sizes, sizes)
        for step in range(1, min(int(sizes.max()), BUCKET_ALL_PAIRS)):
            same = sorted_keys[step:] == sorted_keys[:-step]
            if step > BUCKET_WINDOW:
                same &= bucket_of[step:] <= BUCKET_ALL_PAIRS
            left = np.flatnonzero(same)
            found.append(np.stack([order[left], order[left + step]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    return np.unique(pairs, axis=0)


def text_pairs(
    texts: Sequence[str],
    *,
    threshold: float = TEXT_JACCARD,
    num_perm: int = NUM_PERM,
    band_rows: int = BAND_ROWS,
    seed: int = 1,
) -> Pairs:
    """Pairs of texts whose character shingles overlap at Jaccard >= threshold.

    Identical texts (after normalising case and space) are linked directly; the distinct ones
    are MinHashed and banded (locality-sensitive hashing), so only pairs sharing a band are
    compared: memory and time grow with the rows, not their pairs. Texts shorter than
    TEXT_MIN_CHARS (after normalising) link nothing here."""
    if not 0 < threshold <= 1:
        raise ValueError(f"the Jaccard threshold must be in (0, 1], got {threshold}")
    if num_perm % band_rows:
        raise ValueError(f"{num_perm} MinHash values do not split into bands of {band_rows}")
    first: dict[str, int] = {}
    same_a: list[int] = []
    same_b: list[int] = []
    for row, text in enumerate(texts):
        key = _normal(text or "")
        if len(key) < TEXT_MIN_CHARS:
            continue
        seen = first.setdefault(key, row)
        if seen != row:
            same_a.append(seen)
            same_b.append(row)
    unique = list(first.values())
    normal = [_normal(texts[i]) for i in unique]
    a = [np.asarray(same_a, dtype=np.int64)]
    b = [np.asarray(same_b, dtype=np.int64)]
    score = [np.ones(len(same_a))]
    if len(unique) >= 2:
        signatures = minhash_signatures(normal, num_perm=num_perm, seed=seed)
        candidates = _band_candidates(signatures, band_rows, seed)
        # The signatures' agreement estimates Jaccard (standard error <= 0.045 at 128
        # values): a generous cut drops most chance collisions before the exact check.
        agree = np.zeros(len(candidates))
        for start in range(0, len(candidates), 65_536):
            block = candidates[start : start + 65_536]
            agree[start : start + len(block)] = (
                signatures[block[:, 0]] == signatures[block[:, 1]]
            ).mean(axis=1)
        candidates = candidates[agree >= threshold - 0.15]
        exact = np.fromiter(
            (
                _set_jaccard(_shingles(normal[i]), _shingles(normal[j]))
                for i, j in candidates.tolist()
            ),
            dtype=np.float64,
            count=len(candidates),
        )
        keep = exact >= threshold
        rows = np.asarray(unique, dtype=np.int64)
        a.append(rows[candidates[keep, 0]])
        b.append(rows[candidates[keep, 1]])
        score.append(exact[keep])
    return _pairs("text", np.concatenate(a), np.concatenate(b), np.concatenate(score))


def text_threshold(pairs: Pairs, n: int) -> float:
    """The Jaccard similarity from which two texts of this dataset are copies, from
    `text_pairs` at the TEXT_JACCARD floor: `calibrated_threshold` of each text's best Jaccard
    (0 for a text with no pair), within [TEXT_JACCARD, TEXT_HIGH]. Where most texts have no
    near match it stays at the floor; where texts come from templates and most have a
    near-identical neighbour, it rises towards the ceiling."""
    best = np.zeros(n)
    np.maximum.at(best, pairs.a, pairs.score)
    np.maximum.at(best, pairs.b, pairs.score)
    return calibrated_threshold(best, low=TEXT_JACCARD, high=TEXT_HIGH)


def _set_jaccard(x: set[bytes], y: set[bytes]) -> float:
    return len(x & y) / len(x | y)


# ---------------------------------------------------------------------------------------------
# Images


def _bits(value: Any) -> np.ndarray:
    return np.asarray(value.hash, dtype=bool).reshape(-1)


def _open_image(image: ImageInput) -> Any:
    """An image (array, PIL image, path, encoded bytes or binary file) as an RGB PIL image."""
    # Pillow is loaded here with the other image libraries, not by the web process.
    from PIL import Image, ImageOps

    if isinstance(image, np.ndarray):
        return _to_rgb(_array_to_image(image))
    if isinstance(image, Image.Image):
        return _to_rgb(image)
    if isinstance(image, bytes | bytearray | memoryview):
        image = io.BytesIO(image)
    elif not isinstance(image, str | os.PathLike) and not hasattr(image, "read"):
        raise TypeError(f"not an image, path, bytes or file: {type(image).__name__}")
    with Image.open(image) as picture:
        picture.load()
        return _to_rgb(ImageOps.exif_transpose(picture))


def _trimmed(picture: Any) -> Any:
    """The picture without a border of its corner's colour (padding, letterboxing), so a copy
    cropped within the border hashes as the original does."""
    # Pillow is loaded here with the other image libraries, not by the web process.
    from PIL import Image, ImageChops

    plain = Image.new(picture.mode, picture.size, picture.getpixel((0, 0)))
    # Differences up to 16 of 255 are compression noise, not content.
    box = ImageChops.difference(picture, plain).point(lambda v: 255 if v > 16 else 0).getbbox()
    return picture.crop(box) if box else picture


def image_hashes(images: Iterable[ImageInput | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the perceptual (DCT) hashes of the whole picture, of its central CROP_SHARE
    and of the picture with its border trimmed, as (n, 3, 64) booleans, and whether the image could be read (an image that
    cannot is left out of the image pass, not the run)."""
    # imagehash (and SciPy under it) is loaded here: the web process must not load it.
    import imagehash

    hashes: list[np.ndarray] = []
    readable: list[bool] = []
    for image in images:
        try:
            if image is None:
                raise ValueError("no image")
            picture = _open_image(image)
        except (OSError, ValueError, TypeError):
            hashes.append(np.zeros((VIEWS, HASH_BITS), dtype=bool))
            readable.append(False)
            continue
        w, h = picture.size
        dx, dy = round(w * (1 - CROP_SHARE) / 2), round(h * (1 - CROP_SHARE) / 2)
        centre = picture.crop((dx, dy, w - dx, h - dy)) if w > 4 and h > 4 else picture
        views = (picture, centre, _trimmed(picture))
        hashes.append(np.stack([_bits(imagehash.phash(view)) for view in views]))
        readable.append(True)
    if not hashes:
        return np.zeros((0, VIEWS, HASH_BITS), dtype=bool), np.zeros(0, dtype=bool)
    return np.stack(hashes), np.asarray(readable)


def image_pairs(
    hashes: np.ndarray,
    readable: np.ndarray | None = None,
    *,
    max_distance: int = IMAGE_DISTANCE,
    k: int = IMAGE_K,
) -> Pairs:
    """Pairs of images whose hashes (whole picture, or whole against a central crop) differ in
    at most `max_distance` bits. Each hash is looked up among its k nearest whole-picture
    hashes (Hamming distance is an inner product of ±1 vectors), so this scales as kNN does."""
    h = np.asarray(hashes, dtype=bool)
    if h.ndim != 3 or h.shape[1:] != (VIEWS, HASH_BITS):
        raise ValueError(f"expected hashes shaped (n, {VIEWS}, {HASH_BITS}), got {h.shape}")
    ok = np.ones(len(h), dtype=bool) if readable is None else np.asarray(readable, dtype=bool)
    rows = np.flatnonzero(ok)
    if len(rows) < 2:
        return Pairs.empty("image")
    signs = np.where(h[rows], 1.0, -1.0).astype(np.float32)
    # metric "l2": the squared distance of ±1 vectors is 4 x the Hamming distance.
    index = NeighbourIndex(signs[:, 0], metric="l2")
    k = min(k, len(rows) - 1)
    trimmed = NeighbourIndex(signs[:, 2], metric="l2")
    found_a, found_b, found_d = [], [], []
    searches = (
        index.neighbours(np.arange(len(rows)), k),
        index.query(signs[:, 1], k + 1),
        trimmed.neighbours(np.arange(len(rows)), k),
    )
    for idx, sims in searches:
        distance = np.abs(np.rint(-sims / 4.0))  # abs: no "-0"
        r, c = np.nonzero((distance <= max_distance) & (idx >= 0))
        found_a.append(rows[r])
        found_b.append(rows[idx[r, c]])
        found_d.append(distance[r, c])
    return _pairs(
        "image", np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_d)
    )


# ---------------------------------------------------------------------------------------------
# Groups


def groups_from_pairs(n: int, pairs: Sequence[Pairs]) -> list[list[int]]:
    """Connected components (of two rows or more) of all the pairs, largest first."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = np.concatenate([p.a for p in pairs]) if pairs else np.empty(0, np.int64)
    b = np.concatenate([p.b for p in pairs]) if pairs else np.empty(0, np.int64)
    if not len(a):
        return []
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    groups: dict[int, list[int]] = {}
    for i in np.flatnonzero(sizes[component] > 1).tolist():
        groups.setdefault(int(component[i]), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def describe(signal: str, score: float) -> str:
    """How a pair was found, in words."""
    if signal == "text":
        return f"near-identical text (Jaccard {score:.2f})"
    if signal == "image":
        return f"same picture (hash distance {int(score)})"
    return f"embedding similarity {score:.2f}"


def how_found(n: int, pairs: Sequence[Pairs]) -> list[list[str]]:
    """Per row, how its strongest link of each signal was found ([] for rows without one)."""
    best: list[dict[str, float]] = [{} for _ in range(n)]
    for p in pairs:
        lower_is_better = p.signal == "image"
        for i, j, s in zip(p.a.tolist(), p.b.tolist(), p.score.tolist(), strict=True):
            for row in (i, j):
                held = best[row].get(p.signal)
                if held is None or (s < held if lower_is_better else s > held):
                    best[row][p.signal] = s
    return [
        [describe(signal, found[signal]) for signal in SIGNALS if signal in found] for found in best
    ]
