"""The stages of a scoring run: read arrays once, call the engine's kernels, write the scores.

Each signal that cannot be computed for this dataset (no embeddings, one class, too few
samples…) is skipped with the reason; the others still land.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.datasets.importing.loader import raw_connection
from apps.datasets.models import Prediction, Sample
from apps.datasets.services import embeddings_compute
from apps.quality import arrays
from apps.quality.models import Flag, ScoringRun
from apps.quality.progress import scoring_run_progress
from workers.engine import labels as label_kernels
from workers.engine import neighbours as nb
from workers.engine.labels import CrossValidation, LabelErrors, class_overlap
from workers.engine.neighbours import NeighbourIndex, kth_distance
from workers.engine.slices import weak_slices

# A sample is flagged an outlier above this percentile of mean neighbour distance, and on the
# boundary when its top two classes are closer than this.
OUTLIER_PERCENTILE = 0.99
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


def load(run: ScoringRun, *, full: bool = True) -> Arrays:
    """The run's arrays; `full=False` (a chunk's needs) leaves out metadata, texts and the
    model run, and never computes embeddings."""
    dataset = run.dataset
    columns = ("id", "label", "split", "metadata", "text") if full else ("id", "label", "split")
    rows = [
        (*row, None, None)[:5]
        for row in Sample.objects.filter(dataset=dataset, active=True)
        .order_by("id")
        .values_list(*columns)
    ]

    classes = list(dataset.labels)
    index = {c: i for i, c in enumerate(classes)}
    data = Arrays(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        labels=np.array(
            [index.get(r[1], -1) if r[1] is not None else -1 for r in rows], dtype=np.int64
        ),
        splits=np.array([r[2] for r in rows]),
        classes=classes,
        metadata=[r[3] or {} for r in rows],
        texts=[r[4] or "" for r in rows] if dataset.modality == "text" and full else None,
    )
    space = dataset.embedding_spaces.order_by("id").first()
    if space is None and rows and full:
        # No embeddings given or computed yet: compute them now (text, tabular or images).
        try:
            space = embeddings_compute(dataset_id=dataset.pk)
        except Exception as exc:  # noqa: BLE001 - e.g. no text at all: scoring goes on without
            data.skipped["embeddings"] = f"none given, and computing them failed: {exc}"
    if space is None:
        data.skipped.setdefault("embeddings", "the dataset has no embedding space")
    else:
        found, vectors = arrays.space_vectors(space.pk)
        data.vectors, data.has_vector = arrays.align(data.ids, found, vectors)
    if not full:
        return data
    if run.model_run_id and run.model_run.classes == classes:
        _load_model_run(run.model_run, data)
    elif run.model_run_id:
        data.skipped["model_run"] = "the model run's classes differ from the dataset's labels"
    return data


def _load_model_run(model_run, data: Arrays) -> None:
    """The final probabilities (epoch 0, else the last epoch) and, when logged, every epoch's."""
    epochs = list(
        Prediction.objects.filter(run=model_run)
        .values_list("epoch", flat=True)
        .distinct()
        .order_by("epoch")
    )
    if not epochs:
        data.skipped["model_run"] = "the model run has no probabilities"
        return
    by_epoch = {}
    for epoch in epochs:
        found, probs = arrays.run_probs(model_run.pk, epoch=epoch)
        probs, present = arrays.align(data.ids, found, probs)
        if not present.all():
            data.skipped["model_run"] = (
                f"the model run has no epoch-{epoch} probabilities for "
                f"{int((~present).sum())} samples"
            )
            return
        by_epoch[epoch] = probs
    final = 0 if 0 in by_epoch else epochs[-1]
    data.probs, data.probs_source = by_epoch[final], f"model run “{model_run.name}”"
    training = [by_epoch[e] for e in epochs if e > 0]
    if len(training) >= 2:
        data.epoch_probs = np.stack(training)
    else:
        data.skipped["training_dynamics"] = "the model run has fewer than two epochs logged"


# --- chunks: bounded pieces of a run that any worker may compute ------------------------------

PROBABILITIES, NEIGHBOURS = "probabilities", "neighbours"
_cache: dict = {}


def _cache_key(run: ScoringRun) -> tuple:
    return (run.pk, run.created_at, run.attempts)


def _cached(run: ScoringRun, name: str, build):
    """One worker keeps what it built for the run it is working on (arrays, models, the graph)
    for the next chunk of the same run."""
    key = _cache_key(run)
    if _cache.get("key") != key:
        _cache.clear()
        _cache["key"] = key
    if name not in _cache:
        _cache[name] = build()
    return _cache[name]


def forget() -> None:
    """Drop what this worker kept for its last run (a million samples' worth is several GB)."""
    _cache.clear()


def _chunk_arrays(run: ScoringRun) -> Arrays:
    if _cache.get("key") == _cache_key(run) and "full arrays" in _cache:
        return _cache["full arrays"]  # the worker that planned the run: no second copy
    return _cached(run, "arrays", lambda: load(run, full=False))


def _needs_cross_validation(data: Arrays) -> bool:
    labelled = data.labels >= 0
    return (
        data.probs is None
        and data.vectors is not None
        and bool(data.has_vector.all())
        and len(set(data.labels[labelled].tolist())) >= 2
    )


def _has_neighbours(data: Arrays) -> bool:
    return data.vectors is not None and len(data.ids) >= 3 and bool(data.has_vector.all())


def _cross_validation(run: ScoringRun):
    data = _chunk_arrays(run)
    return _cached(run, "cv", lambda: CrossValidation(data.vectors, data.labels))


def _neighbour_index(run: ScoringRun):
    def build():
        graph = _artefact_path(run, "graph")
        data = _chunk_arrays(run)
        if default_storage.exists(graph):
            with default_storage.open(graph) as f:
                return NeighbourIndex(data.vectors, graph=f.read())
        return NeighbourIndex(data.vectors)

    return _cached(run, "index", build)


def plan(run: ScoringRun) -> dict[str, int]:
    """Read the dataset, build what every chunk shares (the neighbour graph), and say how many
    chunks of each stage the run needs."""
    data = _cached(run, "full arrays", lambda: load(run))
    stages = {}
    if _needs_cross_validation(data):
        stages[PROBABILITIES] = _cross_validation(run).n_parts
    if _has_neighbours(data):
        index = _neighbour_index(run)
        graph = index.to_bytes()
        if graph is not None:
            _save_bytes(run, "graph", graph)
            run.params = {**run.params, "graph": True}
        stages[NEIGHBOURS] = math.ceil(len(data.ids) / settings.LOUPE_SCORING_CHUNK_ROWS)
    return stages


def results_intact(run: ScoringRun, done: list[tuple[str, int]]) -> bool:
    """Whether the results of the run's done chunks (and its graph) are still in storage; a
    run resumed after its results were discarded must plan again."""
    names = [f"{stage}-{index}" for stage, index in done]
    if run.params.get("graph"):
        names.append("graph")
    return all(default_storage.exists(_artefact_path(run, name)) for name in names)


def neighbour_k(n: int) -> int:
    return min(10, n - 1)


def compute_chunk(run: ScoringRun, stage: str, index: int) -> None:
    """Compute one chunk and save its result where every worker can read it."""
    data = _chunk_arrays(run)
    if stage == PROBABILITIES:
        result = _cross_validation(run).part(index)
    elif stage == NEIGHBOURS:
        result = _neighbour_chunk(run, data, index)
    else:
        raise ValueError(f"unknown stage {stage!r}")
    _save_bytes(run, f"{stage}-{index}", _npz(result))


def _neighbour_chunk(run: ScoringRun, data: Arrays, number: int) -> dict[str, np.ndarray]:
    """A block of rows: their neighbours among all rows, among the reference (non-production)
    rows and, for drift, among the training rows."""
    size = settings.LOUPE_SCORING_CHUNK_ROWS
    rows = np.arange(number * size, min((number + 1) * size, len(data.ids)))
    index, k = _neighbour_index(run), neighbour_k(len(data.ids))
    result = dict(zip(("indices", "sims"), index.neighbours(rows, k), strict=True))
    reference = data.splits != "production"
    if reference.any() and not reference.all():
        result["reference_sims"] = index.neighbours(rows, k, within=reference)[1]
    training, production = data.splits == "train", data.splits == "production"
    if _drift_applies(data):
        kth = np.full(len(rows), np.nan)
        ask = training[rows] | production[rows]
        kth[ask] = kth_distance(index.neighbours(rows[ask], k, within=training)[1])
        result["train_kth"] = kth
    return result


def _drift_applies(data: Arrays) -> bool:
    return (data.splits == "production").sum() >= 10 and (data.splits == "train").sum() >= 10


def _gather(run: ScoringRun, stage: str, count: int) -> dict[str, np.ndarray]:
    parts = [_load_npz(run, f"{stage}-{i}") for i in range(count)]
    return {key: [part[key] for part in parts] for key in parts[0]} if parts else {}


def _artefact_path(run: ScoringRun, name: str) -> str:
    # The creation time keeps two databases' run 1 (a test database, say) apart in one storage.
    return f"scoring/run-{run.pk}-{run.created_at:%Y%m%d%H%M%S%f}/{name}"


def _save_bytes(run: ScoringRun, name: str, content: bytes) -> None:
    path = _artefact_path(run, name)
    if default_storage.exists(path):  # an earlier attempt's: replace it
        default_storage.delete(path)
    default_storage.save(path, ContentFile(content))


def _npz(result: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **result)
    return buffer.getvalue()


def _load_npz(run: ScoringRun, name: str) -> dict[str, np.ndarray]:
    with default_storage.open(_artefact_path(run, name)) as f:
        loaded = np.load(io.BytesIO(f.read()))
        return {key: loaded[key] for key in loaded.files}


def discard_artefacts(run: ScoringRun) -> None:
    """Remove the chunk results and graph of a finished run."""
    folder = _artefact_path(run, "")
    try:
        _dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        default_storage.delete(folder + name)


# --- finishing: everything else, from the chunks' results -------------------------------------


def finish(run: ScoringRun, stages: dict[str, int]) -> None:
    """Everything after the chunks, then the scores written, each stage recorded as it starts."""
    timings: dict[str, float] = {}
    last = [None, time.monotonic()]

    def stage(name: str, progress: float) -> None:
        now = time.monotonic()
        if last[0]:
            timings[last[0]] = round(now - last[1], 2)
        last[:] = [name, now]
        scoring_run_progress(run=run, stage=name, progress=progress)

    stage("reading", 0.86)
    data = _cached(run, "full arrays", lambda: load(run))
    n = len(data.ids)
    scores: dict[str, np.ndarray] = {}
    summary: dict = {"samples": n, "classes": data.classes}
    reasons: list[list[str]] = [[] for _ in range(n)]
    labelled = data.labels >= 0

    stage("label errors", 0.88)
    if PROBABILITIES in stages:
        cv, parts = _cross_validation(run), _gather(run, PROBABILITIES, stages[PROBABILITIES])
        data.label_errors = cv.label_errors({key: cv.combine(p) for key, p in parts.items()})
        data.probs, data.probs_source = data.label_errors.probs, cv.description
    if data.probs is None:
        data.skipped["label_errors"] = (
            "no model run and no embeddings to cross-validate on, or fewer than two classes"
        )
    summary["probabilities"] = data.probs_source

    if data.label_errors is not None:
        issues = data.label_errors.issues
    elif data.probs is not None:
        # A model run's probabilities cannot be refitted without the flagged rows: the ensemble
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
        given = np.where(labelled, data.labels, 0)
        self_confidence = data.probs[np.arange(n), given]
        suggested = label_kernels.suggested_label(data.probs, data.labels, issues=issues & labelled)
        scores["likely_mislabeled"] = issues & labelled
        scores["mislabel_score"] = np.where(labelled, 1 - self_confidence, np.nan)
        scores["suggested"] = suggested
        # Given label x suggested label: the health page's matrix, whose cells are queries.
        k = data.probs.shape[1]
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
                f"at {data.probs[i, suggested[i]]:.2f}"
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

    stage("weak slices", 0.9)
    if "likely_mislabeled" in scores:
        _weak_slices(data, scores, summary)
    else:
        data.skipped["weak_slices"] = "needs label errors"

    stage("neighbours", 0.91)
    if NEIGHBOURS in stages:
        graph = {
            key: np.concatenate(parts)
            for key, parts in _gather(run, NEIGHBOURS, stages[NEIGHBOURS]).items()
        }
        _neighbour_signals(data, graph, scores, summary, reasons)
    elif data.vectors is not None:
        data.skipped["neighbours"] = "fewer than 3 samples, or samples without an embedding"
    else:
        data.skipped["neighbours"] = "no embeddings"

    stage("writing", 0.95)
    flags = _flags(scores, n)
    counts = Counter(chain.from_iterable(flags))
    summary["flag_counts"] = {flag.value: counts[flag.value] for flag in Flag}
    _write(run, data, scores, flags, reasons)
    stage("", 0.99)
    run.summary, run.skipped = summary, data.skipped
    run.timings = {**run.timings, **{f"finish: {name}": t for name, t in timings.items()}}
    run.save(update_fields=["summary", "skipped", "timings"])


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
    reference = data.splits != "production"
    if not reference.any():
        reference = np.ones(n, dtype=bool)
    scores["outlier_score"] = nb.outlier_scores_from(
        graph.get("reference_sims", graph["sims"]), reference
    )
    indices = graph["indices"]
    agreement, majority, majority_count = nb.knn_label_agreement(indices, labels)
    scores["knn_agreement"] = agreement
    for i in np.flatnonzero(scores.get("likely_mislabeled", np.zeros(n, dtype=bool))):
        if majority[i] >= 0 and majority[i] != labels[i]:
            reasons[i].append(
                f"{int(majority_count[i])} of {k} nearest neighbours are {data.classes[majority[i]]}"
            )
    scores["outlier"] = scores["outlier_score"] >= OUTLIER_PERCENTILE
    for i in np.flatnonzero(scores["outlier"]):
        reasons[i].append(
            f"far from the rest: further from its {k} nearest neighbours than "
            f"{OUTLIER_PERCENTILE:.0%} of samples"
        )

    groups = nb.duplicate_groups(indices, graph["sims"])
    # Unlabelled samples have no label to conflict with: None, not the -1 index.
    findings = nb.duplicate_findings(
        groups, data.splits, [int(c) if c >= 0 else None for c in labels]
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
            reasons[i].append(f"near duplicate of {others} other sample(s) in {splits}")
        if record["leakage"]:
            leaked[members] = True
            for i in members:
                if data.splits[i] != "train":
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
    }

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
    if _drift_applies(data):
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


def _write(
    run: ScoringRun,
    data: Arrays,
    scores: dict[str, np.ndarray],
    flags: list[list[str]],
    reasons: list[list[str]],
) -> None:
    """Replace the run's scores in one transaction (an earlier attempt's rows go first)."""
    n = len(data.ids)

    def column(name: str, default=None):
        values = scores.get(name)
        return [default] * n if values is None else values.tolist()

    suggested = scores.get("suggested")
    labels = [data.classes[s] for s in suggested.tolist()] if suggested is not None else [None] * n
    group = [None if g is None or g < 0 else g for g in column("duplicate_group")]
    rows = zip(
        data.ids.tolist(),
        labels,
        column("likely_mislabeled", False),
        column("mislabel_score"),
        column("error_potential"),
        column("margin"),
        column("outlier_score"),
        column("knn_agreement"),
        group,
        column("cluster"),
        column("x"),
        column("y"),
        column("coverage"),
        flags,
        reasons,
        strict=True,
    )
    with raw_connection() as conn, conn.transaction():
        conn.execute("DELETE FROM quality_samplescore WHERE run_id = %s", [run.pk])
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY quality_samplescore (run_id, sample_id, suggested_label, likely_mislabeled, mislabel_score, "
                "error_potential, margin, outlier_score, knn_agreement, duplicate_group, cluster, x, y, "
                "coverage, flags, reasons) "
                "FROM STDIN"
            ) as copy,
        ):
            for (
                sample_id,
                label,
                issue,
                score,
                potential,
                margin,
                outlier,
                agree,
                group,
                cluster,
                x,
                y,
                coverage,
                flagged,
                why,
            ) in rows:
                copy.write_row(
                    (
                        run.pk,
                        sample_id,
                        label,
                        bool(issue),
                        _num(score),
                        _num(potential),
                        _num(margin),
                        _num(outlier),
                        _num(agree),
                        group,
                        cluster,
                        _num(x),
                        _num(y),
                        _num(coverage),
                        flagged,
                        json.dumps(why),
                    )
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


def _num(value):
    return (
        None
        if value is None or (isinstance(value, float) and not np.isfinite(value))
        else float(value)
    )
