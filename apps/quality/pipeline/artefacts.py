"""Chunk results and the neighbour graph, kept in storage where every worker can read them."""

from __future__ import annotations

import io

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.quality.models import ScoringRun


def results_intact(run: ScoringRun, done: list[tuple[str, int]]) -> bool:
    """Whether the results of the run's done chunks (and its graph) are still in storage; a
    run resumed after its results were discarded must plan again."""
    names = [f"{stage}-{index}" for stage, index in done]
    if run.params.get("graph"):
        names.append("graph")
    return all(default_storage.exists(artefact_path(run, name)) for name in names)


def gather(run: ScoringRun, stage: str, count: int) -> dict[str, list[np.ndarray]]:
    """The results of a stage's chunks, in chunk order, as one list per array name."""
    parts = [_load_npz(run, f"{stage}-{i}") for i in range(count)]
    return {key: [part[key] for part in parts] for key in parts[0]} if parts else {}


def artefact_path(run: ScoringRun, name: str) -> str:
    # The creation time keeps two databases' run 1 (a test database, say) apart in one storage.
    return f"scoring/run-{run.pk}-{run.created_at:%Y%m%d%H%M%S%f}/{name}"


def save_bytes(run: ScoringRun, name: str, content: bytes) -> None:
    path = artefact_path(run, name)
    if default_storage.exists(path):  # an earlier attempt's: replace it
        default_storage.delete(path)
    default_storage.save(path, ContentFile(content))


def save_arrays(run: ScoringRun, name: str, result: dict[str, np.ndarray]) -> None:
    save_bytes(run, name, _npz(result))


def _npz(result: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **result)
    return buffer.getvalue()


def _load_npz(run: ScoringRun, name: str) -> dict[str, np.ndarray]:
    with default_storage.open(artefact_path(run, name)) as f:
        loaded = np.load(io.BytesIO(f.read()))
        return {key: loaded[key] for key in loaded.files}


def discard_artefacts(run: ScoringRun) -> None:
    """Remove the chunk results and graph of a finished run."""
    folder = artefact_path(run, "")
    try:
        _dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        default_storage.delete(folder + name)
