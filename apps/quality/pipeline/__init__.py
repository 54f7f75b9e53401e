"""The stages of a scoring run: read arrays once, call the engine's kernels, write the scores.

Each signal that cannot be computed for this dataset (no embeddings, one class, too few
samples…) is skipped with the reason; the others still land. `read` (the arrays, kept per
worker), `chunks`, `artefacts` (chunk results in storage) and `write` do the I/O; `analysis` is
pure functions over the arrays and the chunks' results, with no database.
"""

from __future__ import annotations

import time

from apps.quality.models import ScoringRun
from apps.quality.pipeline import analysis, write
from apps.quality.pipeline.analysis import (
    ACTIVE_LEARNING_BUDGET,
    BOUNDARY_MARGIN,
    NEIGHBOUR_K,
    REDUNDANT_BELOW,
    Arrays,
    neighbour_k,
)
from apps.quality.pipeline.artefacts import artefact_path as _artefact_path
from apps.quality.pipeline.artefacts import discard_artefacts, gather, results_intact
from apps.quality.pipeline.chunks import (
    NEIGHBOURS,
    PROBABILITIES,
    compute_chunk,
    cross_validation,
    plan,
)
from apps.quality.pipeline.read import forget, full_arrays, load
from apps.quality.progress import scoring_run_progress

__all__ = [
    "ACTIVE_LEARNING_BUDGET",
    "BOUNDARY_MARGIN",
    "NEIGHBOUR_K",
    "NEIGHBOURS",
    "PROBABILITIES",
    "REDUNDANT_BELOW",
    "Arrays",
    "_artefact_path",
    "compute_chunk",
    "discard_artefacts",
    "finish",
    "forget",
    "load",
    "neighbour_k",
    "plan",
    "results_intact",
]


def finish(run: ScoringRun, stages: dict[str, int]) -> None:
    """Everything after the chunks: the arrays and the chunks' results read, analysed, and the
    scores written, each stage recorded as it starts."""
    timings: dict[str, float] = {}
    last = [None, time.monotonic()]

    def stage(name: str, progress: float) -> None:
        now = time.monotonic()
        if last[0]:
            timings[last[0]] = round(now - last[1], 2)
        last[:] = [name, now]
        scoring_run_progress(run=run, stage=name, progress=progress)

    stage("reading", 0.86)
    data = full_arrays(run)
    found = analysis.Findings.start(data)

    stage("label errors", 0.88)
    if PROBABILITIES in stages:
        cv = cross_validation(run)
        analysis.analyse_labels(data, found, cv, gather(run, PROBABILITIES, stages[PROBABILITIES]))
    else:
        analysis.analyse_labels(data, found)

    stage("weak slices", 0.9)
    analysis.analyse_slices(data, found)

    stage("neighbours", 0.91)
    graph = gather(run, NEIGHBOURS, stages[NEIGHBOURS]) if NEIGHBOURS in stages else None
    analysis.analyse_neighbours(data, found, graph)

    stage("writing", 0.95)
    flags = analysis.flag_samples(found)
    analysis.summarise_distributions(data, found)
    write.write_scores(run, data, found.scores, flags, found.reasons)
    stage("", 0.99)
    write.write_summary(run, summary=found.summary, skipped=data.skipped, timings=timings)
