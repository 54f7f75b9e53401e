"""The analysis of a scoring run: pure functions over its arrays and its chunks' results."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from apps.quality.models import Flag
from workers.engine import duplicates as dup
from workers.engine import labels as label_kernels
from workers.engine import neighbours as nb
from workers.engine import outliers as outlier_kernels
from workers.engine.labels import CrossValidation, LabelErrors, class_overlap
from workers.engine.slices import weak_slices

# A sample is on the boundary when its top two classes are closer than this.
BOUNDARY_MARGIN = 0.1
# Easy (error potential below this) near duplicates in train are redundancy candidates.
REDUNDANT_BELOW = 0.2
ACTIVE_LEARNING_BUDGET = 100


@dataclass
class Arrays:
    ids: np.ndarray
    labels: np.ndarray  # class index, -1 for unlabelled
    splits: np.ndarray
    classes: list[str]
    vectors: np.ndarray | None = None
    has_vector: np.ndarray | None = None
    probs: np.ndarray | None = None
    probs_source: str = ""
    epoch_probs: np.ndarray | None = None  # (epochs, n, classes) when the model run logged them
    # What cross-validation found (probabilities refitted without the flagged rows, flags and
    # each row's chance of a wrong label), when it ran instead of a model run.
    label_errors: LabelErrors | None = None
    texts: list[str] | None = None
    metadata: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


NEIGHBOUR_K = 10  # nearest neighbours per sample for every neighbour signal


def neighbour_k(n: int) -> int:
    return min(NEIGHBOUR_K, n - 1)


def drift_applies(data: Arrays) -> bool:
    return (data.splits == "production").sum() >= 10 and (data.splits == "train").sum() >= 10


@dataclass
class Findings:
    """What the analysis found so far: per-sample score arrays and reasons, and the summary."""

    scores: dict[str, np.ndarray]
    summary: dict
    reasons: list[list[str]]

    @classmethod
    def start(cls, data: Arrays) -> Findings:
        n = len(data.ids)
        return cls(
            scores={},
            summary={"samples": n, "classes": data.classes},
            reasons=[[] for _ in range(n)],
        )


def analyse_labels(
    data: Arrays,
    found: Findings,
    cv: CrossValidation | None = None,
    parts: dict[str, list[np.ndarray]] | None = None,
) -> None:
    """Label errors, suggested labels, margins, noise per split and the label distribution,
    from the cross-validation's chunk results (`cv`, `parts`) or else the model run's
    probabilities."""
    scores, summary, reasons = found.scores, found.summary, found.reasons
    n = len(data.ids)
    labelled = data.labels >= 0
    if cv is not None and parts is not None:
        # A model run's probabilities join the cross-validation's for the label errors: blended
        # with them through the same cleaning rounds. Margins, boundaries and the confusion
        # matrix stay the model's own.
        given = data.probs
        data.label_errors = cv.label_errors(
            {key: cv.combine(p) for key, p in parts.items()}, given=given
        )
        if given is None:
            data.probs, data.probs_source = data.label_errors.probs, cv.description
        else:
            data.probs_source += f"; label errors combined with {cv.description}"
    if data.probs is None:
        data.skipped["label_errors"] = (
            "no model run and no embeddings to cross-validate on, or fewer than two classes"
        )
    summary["probabilities"] = data.probs_source

    if data.label_errors is not None:
        issues = data.label_errors.issues
    elif data.probs is not None:
        # A model run's probabilities alone (no embeddings for every sample to cross-validate
        # on) cannot be refitted without the flagged rows: the ensemble
        # (noise-rate and per-class pruning, the confident joint's off-diagonal, and
        # disagreement with the nearest neighbours) decides.
        usable = data.vectors is not None and bool(data.has_vector.all())
        issues = label_kernels.find_label_issues(
            data.probs,
            data.labels,
            method="ensemble" if usable else "prune_by_noise_rate",
            features=data.vectors if usable else None,
        )
    if data.probs is not None:
        # The probabilities the label errors were found with: a model run's blended with the
        # cross-validation when both ran.
        label_probs = data.probs if data.label_errors is None else data.label_errors.probs
        given = np.where(labelled, data.labels, 0)
        self_confidence = label_probs[np.arange(n), given]
        if data.label_errors is not None:
            # With the neighbours' vote, and without the class-level noise model when the
            # noise looked instance-dependent.
            suggested = data.label_errors.suggested(data.labels)
        else:
            suggested = label_kernels.suggested_label(
                label_probs, data.labels, issues=issues & labelled
            )
        scores["likely_mislabeled"] = issues & labelled
        # 1 - self-confidence on a log scale: the calibrated probabilities of flagged rows
        # saturate (self-confidence 1e-20), where 1 - p is 1.0 for all of them and ranks nothing.
        scores["mislabel_score"] = np.where(labelled, label_kernels.doubt(self_confidence), np.nan)
        scores["suggested"] = suggested
        # Given label x suggested label: the health page's matrix, whose cells are queries.
        k = label_probs.shape[1]
        matrix = np.zeros((k, k), dtype=np.int64)
        np.add.at(matrix, (data.labels[labelled], suggested[labelled]), 1)
        summary["suggestion_matrix"] = matrix.tolist()
        top2 = np.sort(data.probs, axis=1)[:, -2:] if data.probs.shape[1] > 1 else np.ones((n, 2))
        scores["margin"] = top2[:, 1] - top2[:, 0]
        scores["error_potential"] = label_kernels.error_potential(
            data.probs, data.labels, epoch_probs=data.epoch_probs
        )
        summary["training_dynamics"] = data.epoch_probs is not None
        for i in np.flatnonzero(scores["likely_mislabeled"]):
            reasons[i].append(
                f"labelled {data.classes[data.labels[i]]}; the model says {data.classes[suggested[i]]} "
                f"at {label_probs[i, suggested[i]]:.2f}"
                + (
                    f" ({data.label_errors.error_probability[i]:.0%} likely a wrong label)"
                    if data.label_errors is not None
                    else ""
                )
            )
        _boundary(data, scores, summary, reasons)
        summary["likely_mislabeled"] = int(scores["likely_mislabeled"].sum())
        summary["noise_by_split"] = {}
        for split in np.unique(data.splits[labelled]).tolist():
            flagged = scores["likely_mislabeled"][(data.splits == split) & labelled]
            rate, low, high = label_kernels.label_noise_estimate(flagged)
            summary["noise_by_split"][split] = {
                "labelled": len(flagged),
                "flagged": int(flagged.sum()),
                "rate": rate,
                "low": low,
                "high": high,
            }

    summary["label_distribution"] = _label_distribution(data)


def analyse_slices(data: Arrays, found: Findings) -> None:
    """Metadata values where the label errors concentrate."""
    if "likely_mislabeled" in found.scores:
        _weak_slices(data, found.scores, found.summary)
    else:
        data.skipped["weak_slices"] = "needs label errors"


def analyse_neighbours(
    data: Arrays, found: Findings, parts: dict[str, list[np.ndarray]] | None = None
) -> None:
    """The signals of the neighbour graph, from the neighbour chunks' results (`parts`, None
    when the run had no neighbour stage)."""
    if parts is not None:
        graph = {key: np.concatenate(chunks) for key, chunks in parts.items()}
        _neighbour_signals(data, graph, found.scores, found.summary, found.reasons)
    elif data.vectors is not None:
        data.skipped["neighbours"] = "fewer than 3 samples, or samples without an embedding"
    else:
        data.skipped["neighbours"] = "no embeddings"


def flag_samples(found: Findings) -> list[list[str]]:
    """Per sample, the flags it earned; their counts go into the summary."""
    flags = _flags(found.scores, len(found.reasons))
    counts = Counter(chain.from_iterable(flags))
    found.summary["flag_counts"] = {flag.value: counts[flag.value] for flag in Flag}
    return flags


HISTOGRAM_BINS = 20


def histogram(
    values: np.ndarray,
    *,
    flagged: np.ndarray | None = None,
    link: np.ndarray | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> dict[str, Any]:
    """A score's distribution for the health page: HISTOGRAM_BINS equal bins over [lo, hi]
    (default: the values' range), the count in each, how many of them are flagged, and each
    bin's smallest and largest `link` value (default: the values), the range of the stored
    score that opens exactly the bin's samples in the table."""
    v = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(v)
    v = v[keep]
    if not v.size:
        return {}
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    edges = np.linspace(lo, hi if hi > lo else lo + 1, HISTOGRAM_BINS + 1)
    where = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, HISTOGRAM_BINS - 1)
    linked = v if link is None else np.asarray(link, dtype=np.float64)[keep]
    ranges: list[list[float] | None] = []
    for b in range(HISTOGRAM_BINS):
        members = linked[where == b]
        ranges.append([float(members.min()), float(members.max())] if members.size else None)
    out: dict[str, Any] = {
        "edges": [round(float(e), 6) for e in edges],
        "counts": np.bincount(where, minlength=HISTOGRAM_BINS).tolist(),
        "ranges": ranges,
    }
    if flagged is not None:
        hit = np.asarray(flagged, dtype=bool)[keep]
        out["flagged"] = np.bincount(where[hit], minlength=HISTOGRAM_BINS).tolist()
    return out


def summarise_distributions(data: Arrays, found: Findings) -> None:
    """What the health page draws: the mislabel score's and error potential's distributions
    with the flagged samples among them, and per class the labelled samples and the flagged."""
    scores, summary = found.scores, found.summary
    charts = {}
    if "mislabel_score" in scores:
        charts["mislabel_score"] = histogram(
            scores["mislabel_score"], flagged=scores.get("likely_mislabeled"), lo=0.0, hi=1.0
        )
    if "error_potential" in scores:
        charts["error_potential"] = histogram(scores["error_potential"], lo=0.0, hi=1.0)
    summary["distributions"] = {name: chart for name, chart in charts.items() if chart}
    labelled = data.labels >= 0
    if labelled.any() and "likely_mislabeled" in scores:
        k = len(data.classes)
        flagged = labelled & np.asarray(scores["likely_mislabeled"], dtype=bool)
        samples = np.bincount(data.labels[labelled], minlength=k)
        wrong = np.bincount(data.labels[flagged], minlength=k)
        summary["per_class"] = [
            {"class": data.classes[c], "labelled": int(samples[c]), "flagged": int(wrong[c])}
            for c in range(k)
        ]


def _boundary(data: Arrays, scores: dict, summary: dict, reasons: list[list[str]]) -> None:
    """Samples caught between two classes, the confusion matrix and the most confused pairs."""
    n, k = data.probs.shape
    boundary = np.zeros(n, dtype=bool)
    if k > 1:
        top2 = np.argsort(-data.probs, axis=1)[:, :2]
        boundary = scores["margin"] < BOUNDARY_MARGIN
        for i in np.flatnonzero(boundary):
            a, b = top2[i]
            reasons[i].append(
                f"on the boundary between {data.classes[a]} and {data.classes[b]} "
                f"(margin {scores['margin'][i]:.2f})"
            )
    scores["boundary"] = boundary
    if (data.labels >= 0).any():
        overlap = class_overlap(data.probs, data.labels)
        summary["confusion"] = overlap["confusion"].tolist()
        summary["class_pairs"] = [
            {
                "classes": [data.classes[a] for a in pair["classes"]],
                "overlap": round(pair["overlap"], 4),
            }
            for pair in overlap["pairs"]
        ]


def _label_distribution(data: Arrays) -> dict:
    """Per split: samples per class (and unlabelled), and the largest-to-smallest class ratio."""
    result = {}
    for split in np.unique(data.splits).tolist():
        in_split = data.labels[data.splits == split]
        counts = np.bincount(in_split[in_split >= 0], minlength=len(data.classes))
        present = counts[counts > 0]
        result[split] = {
            "counts": dict(zip(data.classes, counts.tolist(), strict=True)),
            "unlabelled": int((in_split < 0).sum()),
            "imbalance": round(float(present.max() / present.min()), 2) if present.size else None,
        }
    return result


def _weak_slices(data: Arrays, scores: dict, summary: dict) -> None:
    """Metadata values where likely label errors concentrate, with Fisher p and BH q values."""
    labelled = data.labels >= 0
    keys = sorted({key for meta in data.metadata for key in meta})
    columns = {
        key: [meta.get(key) for meta, keep in zip(data.metadata, labelled, strict=True) if keep]
        for key in keys
    }
    if not columns:
        data.skipped["weak_slices"] = "no metadata"
        return
    found = weak_slices(columns, scores["likely_mislabeled"][labelled])
    summary["weak_slices"] = [s for s in found if s.get("significant")][:20]


def _neighbour_signals(
    data: Arrays, graph: dict, scores: dict, summary: dict, reasons: list[list[str]]
) -> None:
    """Outliers, kNN label agreement, near duplicates, clusters, the 2D map and drift, from the
    neighbour chunks' results."""
    vectors, labels, n = data.vectors, data.labels, len(data.ids)
    k = neighbour_k(n)
    _outliers(data, graph, scores, summary, reasons)
    indices = graph["indices"]
    agreement, majority, majority_count = nb.knn_label_agreement(indices, labels)
    scores["knn_agreement"] = agreement
    for i in np.flatnonzero(scores.get("likely_mislabeled", np.zeros(n, dtype=bool))):
        if majority[i] >= 0 and majority[i] != labels[i]:
            reasons[i].append(
                f"{int(majority_count[i])} of {k} nearest neighbours are {data.classes[majority[i]]}"
            )

    _duplicate_signals(data, graph, scores, summary, reasons)

    cluster_ids = nb.clusters(vectors)
    scores["cluster"] = cluster_ids
    is_error = scores.get("likely_mislabeled", np.zeros(n, dtype=bool))
    labelled = labels >= 0
    predicted = None if data.probs is None else np.argmax(data.probs, axis=1)[labelled]
    rows = (
        nb.cluster_summary(
            cluster_ids[labelled],
            labels[labelled],
            is_error[labelled],
            [t for t, keep in zip(data.texts, labelled, strict=True) if keep]
            if data.texts
            else None,
            predicted=predicted,
        )
        if labelled.any()
        else []
    )
    sizes = np.bincount(cluster_ids, minlength=int(cluster_ids.max()) + 1)
    for row in rows:
        row["majority_label"] = data.classes[row["majority_label"]]
        row["size"] = int(sizes[row["cluster"]])  # unlabelled members count towards the size
    summary["clusters"] = rows[:50]
    xy = nb.project_2d(vectors)
    scores["x"], scores["y"] = xy[:, 0], xy[:, 1]

    pool = (data.splits == "production") | (data.splits == "unlabeled") | (labels < 0)
    if data.probs is not None and pool.sum() >= 2:
        budget = int(min(ACTIVE_LEARNING_BUDGET, max(1, pool.sum() // 10)))
        picked = np.flatnonzero(pool)[
            nb.active_learning_pick(data.probs[pool], vectors[pool], budget=budget)
        ]
        scores["pick"] = np.isin(np.arange(n), picked)
        for rank, i in enumerate(picked, start=1):
            reasons[i].append(
                f"worth labelling next: pick {rank} of {budget} (uncertain, and unlike the other picks)"
            )
        summary["active_learning"] = {
            "budget": budget,
            "pool": int(pool.sum()),
            "sample_ids": data.ids[picked].tolist(),
        }
    else:
        data.skipped["active_learning"] = "no unlabelled or production samples with probabilities"

    production = data.splits == "production"
    training = data.splits == "train"
    if drift_applies(data):
        report = nb.drift(
            vectors[training],
            vectors[production],
            k=k,
            kth_distances=(graph["train_kth"][training], graph["train_kth"][production]),
        )
        summary["drift"] = {key: value for key, value in report.items() if np.ndim(value) == 0}
        coverage = np.full(n, np.nan)
        coverage[production] = report["coverage_percentile"]
        scores["coverage"] = coverage
        scores["out_of_coverage"] = np.zeros(n, dtype=bool)
        scores["out_of_coverage"][production] = report["out_of_coverage"]
        summary["drift"]["n_out_of_coverage"] = int(report["out_of_coverage"].sum())
        for i in np.flatnonzero(scores["out_of_coverage"]):
            reasons[i].append(
                f"outside training coverage: its {k}th nearest training sample is further away "
                f"than for {coverage[i]:.0%} of training samples"
            )
        summary["drift"]["cluster_shift"] = nb.cluster_shift(
            cluster_ids[training], cluster_ids[production]
        )[:20]
    else:
        data.skipped["drift"] = "needs at least 10 train and 10 production samples"


def _duplicate_signals(
    data: Arrays, graph: dict, scores: dict, summary: dict, reasons: list[list[str]]
) -> None:
    """Near-duplicate groups from three kinds of link: embedding pairs above the dataset's own
    calibrated threshold, texts with near-identical character shingles (MinHash LSH) and
    images with near-identical perceptual hashes; then leakage across splits, conflicting
    labels and redundancy within the groups."""
    n = len(data.ids)
    sims = graph["sims"]
    threshold = dup.calibrated_threshold(sims[:, 0] if sims.shape[1] else np.empty(0))
    pairs = [dup.embedding_pairs(graph["indices"], sims, threshold)]
    text_threshold = None
    if data.texts:
        lexical = dup.text_pairs(data.texts)
        text_threshold = dup.text_threshold(lexical, n)
        pairs.append(lexical.at_least(text_threshold))
    if "image_hash" in graph:
        pairs.append(dup.image_pairs(graph["image_hash"], graph.get("image_readable")))
    groups = dup.groups_from_pairs(n, pairs)
    how = dup.how_found(n, pairs)
    # Unlabelled samples have no label to conflict with: None, not the -1 index.
    findings = nb.duplicate_findings(
        groups, data.splits, [int(c) if c >= 0 else None for c in data.labels]
    )
    duplicate_group = np.full(n, -1)
    leaked = np.zeros(n, dtype=bool)
    conflicting = np.zeros(n, dtype=bool)
    for g, record in enumerate(findings["groups"]):
        members = record["members"]
        duplicate_group[members] = g
        others = len(members) - 1
        splits = ", ".join(record["splits"])
        for i in members:
            reasons[i].append(
                f"near duplicate of {others} other sample(s) in {splits}: " + " and ".join(how[i])
            )
        if record["leakage"]:
            # The evaluation samples the model has seen: its non-train members (the leaked
            # count of the summary, the flag and the table it links to are the same samples).
            for i in members:
                if data.splits[i] != "train":
                    leaked[i] = True
                    reasons[i].append(
                        f"leaked: a near duplicate is in train, so the model has seen this {data.splits[i]} sample"
                    )
        if record["conflicting_labels"]:
            conflicting[members] = True
            names = " vs ".join(data.classes[int(c)] for c in record["labels"])
            for i in members:
                reasons[i].append(f"near duplicates disagree on the label ({names})")
    scores["duplicate_group"] = duplicate_group
    scores["leaked"], scores["conflicting"] = leaked, conflicting
    # Redundancy: easy samples with a near duplicate can go to shrink the training set; one
    # member of each group stays.
    easy = scores.get("error_potential", np.ones(n)) < REDUNDANT_BELOW
    redundant = np.zeros(n, dtype=bool)
    for members in groups:
        for i in sorted(members)[1:]:
            redundant[i] = easy[i] and data.splits[i] == "train" and not conflicting[i]
    scores["redundant"] = redundant
    summary["redundancy"] = {
        "candidates": int(redundant.sum()),
        "sample_ids": data.ids[redundant][:1000].tolist(),
    }
    summary["duplicates"] = {
        "n_groups": findings["n_groups"],
        "n_duplicate_samples": findings["n_duplicate_samples"],
        "n_leaked_samples": findings["n_leaked_samples"],
        "n_leakage_groups": len(findings["leakage_groups"]),
        "n_conflicting_groups": len(findings["conflicting_label_groups"]),
        "n_conflicting_samples": int(conflicting.sum()),
        # How the groups were found: the calibrated embedding threshold and the pairs each
        # kind of link gave (the health page shows them).
        "embedding_threshold": round(threshold, 4),
        "text_jaccard": None if text_threshold is None else round(text_threshold, 4),
        "image_distance": dup.IMAGE_DISTANCE if "image_hash" in graph else None,
        "pairs": {p.signal: len(p) for p in pairs},
    }


def _outliers(
    data: Arrays, graph: dict, scores: dict, summary: dict, reasons: list[list[str]]
) -> None:
    """Outlier score, flag and reason (the signal that fired), alone or in groups, and the
    threshold and counts per signal for the summary."""
    n = len(data.ids)
    reference = data.splits != "production"
    if not reference.any():
        reference = np.ones(n, dtype=bool)
    found = outlier_kernels.find_outliers(
        indices=graph["indices"],
        sims=graph["sims"],
        reference_sims=graph.get("reference_sims"),
        vectors=data.vectors,
        labels=data.labels,
        reference=reference,
        texts=data.texts,
    )
    scores["outlier_score"], scores["outlier"] = found.score, found.flagged
    for i in np.flatnonzero(found.flagged):
        reasons[i].append(found.reason(int(i)))
    summary["outliers"] = found.summary()
    # The strength the threshold applies to, binned; each bin opens by the stored score, its
    # percentile, which orders the samples the same way.
    summary["outliers"]["histogram"] = histogram(
        found.strength, flagged=found.flagged, link=found.score
    )


_FLAG_SCORES = {
    Flag.MISLABELED: "likely_mislabeled",
    Flag.BOUNDARY: "boundary",
    Flag.OUTLIER: "outlier",
    Flag.LEAKED: "leaked",
    Flag.CONFLICTING: "conflicting",
    Flag.REDUNDANT: "redundant",
    Flag.OUT_OF_COVERAGE: "out_of_coverage",
    Flag.PICK: "pick",
}


def _flags(scores: dict[str, np.ndarray], n: int) -> list[list[str]]:
    """Per sample, the flags it earned, from the boolean score arrays."""
    masks = [(flag.value, scores[name]) for flag, name in _FLAG_SCORES.items() if name in scores]
    if "duplicate_group" in scores:
        masks.append((Flag.DUPLICATE.value, scores["duplicate_group"] >= 0))
    flags: list[list[str]] = [[] for _ in range(n)]
    for value, mask in masks:
        for i in np.flatnonzero(mask):
            flags[i].append(value)
    return flags
