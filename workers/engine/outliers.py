"""Outliers alone and in groups: several signals over a run's arrays, one score, a data-set threshold.

The mean distance to the k nearest neighbours finds a sample that is alone, but not a group of
samples from another source: each member's nearest neighbours are the other members. So the
score also asks how far a sample (and its neighbourhood) is from every labelled class relative
to that class's own spread, whether a text is in the data set's language, and, for samples
outside the reference split, whether their own kind is near while the reference is far. Each
signal becomes a robust z-score (median and MAD of the reference rows); a sample's strength is
its largest z, and the signal behind it is the reason.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The signals, in the order their reasons are preferred when two are equally strong.
GROUP, CLASS, LANGUAGE, REFERENCE, NEIGHBOURS = (
    "group",
    "class",
    "language",
    "reference",
    "neighbours",
)
SIGNALS = (GROUP, CLASS, LANGUAGE, REFERENCE, NEIGHBOURS)
SIGNAL_NAMES = {
    GROUP: "part of a group far from every class",
    CLASS: "far from every class",
    LANGUAGE: "not in the data set's language",
    REFERENCE: "unlike the reference split",
    NEIGHBOURS: "far from its nearest neighbours",
}
# The flag threshold is Benjamini-Hochberg's at this false discovery rate (see
# `adaptive_threshold`), and never less than this many robust standard deviations.
FDR = 0.2
MIN_THRESHOLD = 2.5
# A class needs this many members for its centre and spread to mean anything.
MIN_CLASS_SIZE = 5
# Words a text needs before its share of common words says anything about its language, and how
# many of the data set's most frequent words are its "common words".
MIN_WORDS = 4
COMMON_WORDS = 300
COMMON_SHARE = 0.01
# A text in the data set's language shares at least this fraction of a typical text's common
# words, however narrow their spread: text written from templates shares 0.9 of them in most
# messages and 0.5 in some, which a robust z-score alone would call foreign; another language
# shares almost none.
FOREIGN_BELOW = 0.5
# Flagged samples joined in the kNN graph form a group of at least this many to be called one.
MIN_GROUP = 3
_WORD = re.compile(r"[^\W\d_]+")
_BLOCK = 65536


def robust_z(values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(value - median) / (1.4826 MAD) against the reference rows' values; NaN reads 0.

    The scale has a floor of 1 % of the median's size (or 1e-9), so a signal that is constant
    on the reference does not turn tiny differences into huge z-scores.
    """
    x = np.asarray(values, dtype=np.float64)
    mask = np.ones(len(x), dtype=bool) if reference is None else np.asarray(reference, dtype=bool)
    if mask.shape != x.shape:
        raise ValueError(f"reference mask has shape {mask.shape}, values {x.shape}")
    known = x[mask & np.isfinite(x)]
    if known.size == 0:
        return np.zeros(len(x))
    median = float(np.median(known))
    scale = 1.4826 * float(np.median(np.abs(known - median)))
    scale = max(scale, 0.01 * abs(median), 1e-9)
    return np.where(np.isfinite(x), (x - median) / scale, 0.0)


def _unit(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(x / norms)


def _centre_and_spread(members: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A class's centre and the median and MAD of its members' distances to it, after one
    pass that drops members beyond median + 3 MAD, so a planted group inside the class moves
    neither much."""
    centre = members.mean(axis=0)
    for _ in range(2):
        dist = np.linalg.norm(members - centre, axis=1)
        median = float(np.median(dist))
        mad = 1.4826 * float(np.median(np.abs(dist - median)))
        keep = dist <= median + 3 * max(mad, 1e-9)
        centre = members[keep].mean(axis=0)
    dist = np.linalg.norm(members[keep] - centre, axis=1)
    median = float(np.median(dist))
    mad = 1.4826 * float(np.median(np.abs(dist - median)))
    return centre, median, max(mad, 0.01 * median, 1e-9)


def class_distance(
    vectors: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None
) -> np.ndarray:
    """Per row, how far it is from the nearest labelled class, in that class's own units:
    min over classes c of (|x - centre_c| - median_c) / MAD_c, where median_c and MAD_c are of
    the distances of c's reference members to its centre (cosine geometry: rows are scaled to
    unit length). Classes with fewer than MIN_CLASS_SIZE members are left out; with none left
    (no labels), the whole reference is one class."""
    x = _unit(vectors)
    labels = np.asarray(labels)
    if labels.shape != (len(x),):
        raise ValueError(f"expected {len(x)} labels, got shape {labels.shape}")
    mask = np.ones(len(x), dtype=bool) if reference is None else np.asarray(reference, dtype=bool)
    groups = [
        np.flatnonzero(mask & (labels == c))
        for c in np.unique(labels[mask & (labels >= 0)]).tolist()
    ]
    groups = [g for g in groups if len(g) >= MIN_CLASS_SIZE] or [np.flatnonzero(mask)]
    fits = [_centre_and_spread(x[g]) for g in groups if len(g)]
    if not fits:
        return np.zeros(len(x))
    centres = np.stack([c for c, _, _ in fits])
    medians = np.array([m for _, m, _ in fits])
    mads = np.array([s for _, _, s in fits])
    out = np.empty(len(x))
    centre_sq = (centres**2).sum(axis=1)
    for start in range(0, len(x), _BLOCK):
        block = x[start : start + _BLOCK]
        sq = (block**2).sum(axis=1)[:, None] + centre_sq[None, :] - 2 * block @ centres.T
        dist = np.sqrt(np.maximum(sq, 0.0))
        out[start : start + _BLOCK] = ((dist - medians) / mads).min(axis=1)
    return out


def neighbourhood_mean(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Each row's value averaged with its k nearest neighbours' (slots of -1 left out): a
    signal every member of a group shares, and that one odd row in a crowd does not."""
    v = np.asarray(values, dtype=np.float64)
    idx = np.asarray(indices)
    if idx.ndim != 2 or len(idx) != len(v):
        raise ValueError(f"expected a (rows, k) neighbour table for {len(v)} rows")
    valid = idx >= 0
    gathered = np.where(valid, v[np.where(valid, idx, 0)], 0.0)
    return np.asarray((v + gathered.sum(axis=1)) / (1 + valid.sum(axis=1)))


def common_word_share(
    texts: Sequence[str | None], reference: np.ndarray | None = None
) -> np.ndarray:
    """Per text, the share of its words among the data set's COMMON_WORDS most frequent ones
    (by the number of reference texts holding them, at least COMMON_SHARE of them): the data
    set's function words, in whatever language it is in. A text in another language or script shares few. NaN for texts
    with fewer than MIN_WORDS words."""
    words = [_WORD.findall(t.lower()) if t else [] for t in texts]
    mask = np.ones(len(words), dtype=bool) if reference is None else np.asarray(reference, bool)
    counts: Counter[str] = Counter()
    for w, keep in zip(words, mask, strict=True):
        if keep:
            counts.update(set(w))
    # A word must be in COMMON_SHARE of the texts to count: the words of a contaminating source,
    # common among its own few texts, then stay out even in a small data set.
    floor = COMMON_SHARE * int(mask.sum())
    common = {w for w, c in counts.most_common(COMMON_WORDS) if c >= floor}
    return np.array(
        [sum(x in common for x in w) / len(w) if len(w) >= MIN_WORDS else np.nan for w in words]
    )


def mean_distance(sims: np.ndarray) -> np.ndarray:
    """Mean cosine distance over the finite similarities of each row (0 where there are none)."""
    s = np.asarray(sims, dtype=np.float64)
    finite = np.isfinite(s)
    dist = np.where(finite, 1.0 - s, 0.0)
    counts = finite.sum(axis=1)
    out = np.zeros(len(s))
    np.divide(dist.sum(axis=1), counts, out=out, where=counts > 0)
    return out


def _normal_tail(z: np.ndarray) -> np.ndarray:
    """P(Z >= z) for a standard normal Z."""
    return np.array([0.5 * math.erfc(v / math.sqrt(2)) for v in z.tolist()])


def adaptive_threshold(
    strength: np.ndarray, *, n_signals: int = 1, fdr: float = FDR, floor: float = MIN_THRESHOLD
) -> float:
    """The flag threshold on the combined strength, set by the data: Benjamini-Hochberg.

    Each strength is the largest of `n_signals` robust z-scores, so its p-value under "an
    ordinary sample" is taken as n_signals x P(Z >= z) (normal tail, Bonferroni over the
    signals). The threshold is the smallest strength whose p-value passes Benjamini and
    Hochberg's step-up rule at the false discovery rate `fdr`: on clean data few samples pass,
    and when a share of the data stands apart (a contaminating group) the rule lowers the
    threshold to take it in. Never below `floor`; infinite when nothing passes.
    """
    s = np.asarray(strength, dtype=np.float64)
    s = s[np.isfinite(s)]
    n = s.size
    if n == 0:
        return math.inf
    # Only strengths whose p-value can pass at all matter: m P(Z >= z) <= fdr.
    tail = np.sort(s[s >= floor])[::-1]
    if tail.size == 0:
        return math.inf
    p = np.minimum(1.0, n_signals * _normal_tail(tail))
    passes = np.flatnonzero(p <= fdr * np.arange(1, tail.size + 1) / n)
    return float(tail[passes[-1]]) if passes.size else math.inf


def _components(flagged: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Per row, the size of the group of flagged rows it is joined to in the kNN graph (0 for
    rows not flagged)."""
    from scipy.sparse import coo_matrix  # lazily: the web process never loads SciPy
    from scipy.sparse.csgraph import connected_components

    n = len(flagged)
    rows, cols = np.nonzero(flagged[:, None] & (indices >= 0))
    targets = indices[rows, cols]
    keep = flagged[targets]
    graph = coo_matrix((np.ones(int(keep.sum())), (rows[keep], targets[keep])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component[flagged], minlength=int(component.max()) + 1)
    return np.where(flagged, sizes[component], 0)


@dataclass
class Outliers:
    """What `find_outliers` found, per row and for the summary."""

    score: np.ndarray  # 0-1: share of reference rows with a strength at or below this row's
    strength: np.ndarray  # the largest robust z over the signals
    flagged: np.ndarray
    signal: np.ndarray  # per row, the name of the strongest signal ("" when none was computed)
    group_size: np.ndarray  # size of the flagged group a flagged row is joined to, else 0
    threshold: float
    signals: dict[str, np.ndarray] = field(default_factory=dict)  # per signal, its robust z
    language_share: np.ndarray | None = None
    k: int = 10

    def reason(self, i: int) -> str:
        """Why row i is flagged, naming the signal that fired."""
        signal, z = str(self.signal[i]), float(self.strength[i])
        size = int(self.group_size[i])
        if signal in (GROUP, CLASS) and size >= MIN_GROUP:
            return (
                f"part of a group of {size} samples far from every class "
                f"({z:.1f} robust SDs; threshold {self.threshold:.1f})"
            )
        if signal in (GROUP, CLASS):
            return (
                "far from every class: further from each class's centre than its own samples "
                f"are ({z:.1f} robust SDs)"
            )
        if signal == LANGUAGE and self.language_share is not None:
            return (
                f"not in the data set's language: {self.language_share[i]:.0%} of its words are "
                f"among the data set's common words ({z:.1f} robust SDs)"
            )
        if signal == REFERENCE:
            return (
                "unlike the reference split: its nearest neighbours are other new samples, and "
                f"the reference is far ({z:.1f} robust SDs)"
            )
        return f"far from its {self.k} nearest neighbours ({z:.1f} robust SDs)"

    def summary(self) -> dict[str, Any]:
        flagged = self.flagged
        by_signal = Counter(self.signal[flagged].tolist())
        return {
            # None when no sample passed: the threshold is then infinite, which JSON cannot say.
            "threshold": round(self.threshold, 3) if math.isfinite(self.threshold) else None,
            "fdr": FDR,
            "flagged": int(flagged.sum()),
            "by_signal": {s: int(by_signal.get(s, 0)) for s in SIGNALS if s in self.signals},
            "in_groups": int((self.group_size >= MIN_GROUP).sum()),
            "signals": [s for s in SIGNALS if s in self.signals],
        }


def find_outliers(
    *,
    indices: np.ndarray,
    sims: np.ndarray,
    vectors: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    reference_sims: np.ndarray | None = None,
    texts: Sequence[str | None] | None = None,
) -> Outliers:
    """Outlier score, flag and reason per row from a run's kNN table (`indices`, `sims` among
    all rows; `reference_sims` among the reference rows when it is not all of them), its
    vectors and labels (-1 unlabelled) and, for text, its texts.

    Signals (each a robust z against the reference rows):
      neighbours  mean cosine distance to the k nearest reference rows (a sample alone);
      class       distance to the nearest class in that class's units (see `class_distance`);
      group       the class signal averaged over the row's kNN neighbourhood (a group apart);
      language    a low share of the data set's common words (text only);
      reference   distance to the reference over distance to any row (rows outside the
                  reference split that sit with their own kind, away from the reference).
    """
    idx = np.asarray(indices)
    n = len(idx)
    if np.shape(sims) != idx.shape:
        raise ValueError(f"sims {np.shape(sims)} and indices {idx.shape} differ in shape")
    mask = np.ones(n, dtype=bool) if reference is None else np.asarray(reference, dtype=bool)
    if mask.shape != (n,):
        raise ValueError(f"reference mask has shape {mask.shape}, expected ({n},)")
    if not mask.any():
        mask = np.ones(n, dtype=bool)
    near_ref = sims if reference_sims is None else reference_sims
    # Similarities are float32: digits past the sixth are noise that differs between a search
    # of all rows and one chunk's, so they are dropped before the robust scale magnifies them.
    signals: dict[str, np.ndarray] = {
        NEIGHBOURS: robust_z(np.round(mean_distance(near_ref), 6), mask)
    }
    if vectors is not None:
        given = np.full(n, -1) if labels is None else np.asarray(labels)
        distance = class_distance(vectors, given, mask)
        signals[CLASS] = robust_z(distance, mask)
        signals[GROUP] = robust_z(neighbourhood_mean(distance, idx), mask)
    share = None
    if texts is not None:
        if len(texts) != n:
            raise ValueError(f"expected {n} texts, got {len(texts)}")
        share = common_word_share(texts, mask)
        known = np.isfinite(share)
        if known[mask].sum() >= MIN_CLASS_SIZE:
            # Both the text and its neighbourhood must be foreign: one odd text with few common
            # words among ordinary neighbours is noise, and so is an ordinary text that happens
            # to sit next to foreign ones.
            typical = float(np.median(share[mask & known]))
            filled = np.where(known, share, typical)
            foreign = filled < FOREIGN_BELOW * typical
            signals[LANGUAGE] = np.where(
                foreign,
                np.minimum(
                    robust_z(-filled, mask), robust_z(-neighbourhood_mean(filled, idx), mask)
                ),
                0.0,
            )
    if reference_sims is not None and not mask.all():
        ratio = mean_distance(reference_sims) / np.maximum(mean_distance(sims), 1e-6)
        signals[REFERENCE] = np.where(mask, 0.0, robust_z(ratio, mask))
    names = [s for s in SIGNALS if s in signals]
    stacked = np.stack([signals[s] for s in names], axis=1)
    strongest = np.argmax(stacked, axis=1)
    # Rounded so that float noise cannot reorder equal strengths.
    strength = np.round(stacked[np.arange(n), strongest], 6)
    threshold = adaptive_threshold(strength, n_signals=len(names))
    flagged = strength >= threshold
    ordered = np.sort(strength[mask])
    score = np.searchsorted(ordered, strength, side="right") / ordered.size
    return Outliers(
        score=score,
        strength=strength,
        flagged=flagged,
        signal=np.array(names, dtype=object)[strongest],
        group_size=_components(flagged, idx),
        threshold=threshold,
        signals=signals,
        language_share=share,
        k=idx.shape[1],
    )
