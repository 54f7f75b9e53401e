"""Chunks: bounded pieces of a run that any worker may compute, and the plan that counts them."""

from __future__ import annotations

import math

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage

from apps.datasets.models import Sample
from apps.datasets.selectors import media_open
from apps.quality.models import ScoringRun
from apps.quality.pipeline.analysis import Arrays, drift_applies, neighbour_k
from apps.quality.pipeline.artefacts import artefact_path, save_arrays, save_bytes
from apps.quality.pipeline.read import cached, chunk_arrays, full_arrays
from workers.engine.duplicates import image_hashes
from workers.engine.labels import CrossValidation
from workers.engine.neighbours import NeighbourIndex, kth_distance

PROBABILITIES, NEIGHBOURS = "probabilities", "neighbours"


def _needs_cross_validation(data: Arrays) -> bool:
    """Cross-validate whenever every sample has an embedding, a model run or not: a model run's
    probabilities are combined with the cross-validation's (`CrossValidation.label_errors`)."""
    labelled = data.labels >= 0
    return (
        data.vectors is not None
        and bool(data.has_vector.all())
        and len(set(data.labels[labelled].tolist())) >= 2
    )


def _has_neighbours(data: Arrays) -> bool:
    return data.vectors is not None and len(data.ids) >= 3 and bool(data.has_vector.all())


def cross_validation(run: ScoringRun) -> CrossValidation:
    """The run's cross-validation, built once per worker; its folds are the probability chunks."""
    data = chunk_arrays(run)
    return cached(run, "cv", lambda: CrossValidation(data.vectors, data.labels))


def _neighbour_index(run: ScoringRun):
    def build():
        graph = artefact_path(run, "graph")
        data = chunk_arrays(run)
        if default_storage.exists(graph):
            with default_storage.open(graph) as f:
                return NeighbourIndex(data.vectors, graph=f.read())
        return NeighbourIndex(data.vectors)

    return cached(run, "index", build)


def plan(run: ScoringRun) -> dict[str, int]:
    """Read the dataset, build what every chunk shares (the neighbour graph), and say how many
    chunks of each stage the run needs."""
    data = full_arrays(run)
    stages = {}
    if _needs_cross_validation(data):
        stages[PROBABILITIES] = cross_validation(run).n_parts
    if _has_neighbours(data):
        index = _neighbour_index(run)
        graph = index.to_bytes()
        if graph is not None:
            save_bytes(run, "graph", graph)
            run.params = {**run.params, "graph": True}
        stages[NEIGHBOURS] = math.ceil(len(data.ids) / settings.LOUPE_SCORING_CHUNK_ROWS)
    return stages


def compute_chunk(run: ScoringRun, stage: str, index: int) -> None:
    """Compute one chunk and save its result where every worker can read it."""
    data = chunk_arrays(run)
    if stage == PROBABILITIES:
        result = cross_validation(run).part(index)
    elif stage == NEIGHBOURS:
        result = _neighbour_chunk(run, data, index)
    else:
        raise ValueError(f"unknown stage {stage!r}")
    save_arrays(run, f"{stage}-{index}", result)


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
    if drift_applies(data):
        kth = np.full(len(rows), np.nan)
        ask = training[rows] | production[rows]
        kth[ask] = kth_distance(index.neighbours(rows[ask], k, within=training)[1])
        result["train_kth"] = kth
    result.update(_image_hashes(run, data, rows))
    return result


def _image_hashes(run: ScoringRun, data: Arrays, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Perceptual hashes of the rows' images (image datasets only), for the duplicate pass;
    an image that cannot be read is left out of it."""
    dataset = run.dataset
    if dataset.modality != "image":
        return {}
    ids = data.ids[rows].tolist()
    paths = dict(Sample.objects.filter(id__in=ids).values_list("id", "image"))

    def pictures():
        for sample_id in ids:
            stream = media_open(dataset, paths.get(sample_id) or "")
            if stream is None:
                yield None
                continue
            with stream:
                yield stream.read()

    hashes, readable = image_hashes(pictures())
    return {"image_hash": hashes, "image_readable": readable}
