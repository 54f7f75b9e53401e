"""A run's arrays read once from PostgreSQL, and kept by the worker for the run's next chunk."""

from __future__ import annotations

import numpy as np
from django.utils.translation import ngettext

from apps.datasets.models import Prediction, Sample
from apps.datasets.services import embeddings_compute
from apps.quality import arrays
from apps.quality.models import ScoringRun
from apps.quality.pipeline.analysis import Arrays
from apps.quality.selectors import scoring_space


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
    space = scoring_space(dataset)
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
            missing = int((~present).sum())
            data.skipped["model_run"] = ngettext(
                "the model run has no epoch-%(epoch)s probabilities for %(n)s sample",
                "the model run has no epoch-%(epoch)s probabilities for %(n)s samples",
                missing,
            ) % {"epoch": epoch, "n": missing}
            return
        by_epoch[epoch] = probs
    final = 0 if 0 in by_epoch else epochs[-1]
    data.probs, data.probs_source = by_epoch[final], f"model run “{model_run.name}”"
    training = [by_epoch[e] for e in epochs if e > 0]
    if len(training) >= 2:
        data.epoch_probs = np.stack(training)
    else:
        data.skipped["training_dynamics"] = "the model run has fewer than two epochs logged"


_cache: dict = {}


def _cache_key(run: ScoringRun) -> tuple:
    return (run.pk, run.created_at, run.attempts)


def cached(run: ScoringRun, name: str, build):
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


def full_arrays(run: ScoringRun) -> Arrays:
    """Every array of the run (metadata, texts, the model run's probabilities), read once."""
    return cached(run, "full arrays", lambda: load(run))


def chunk_arrays(run: ScoringRun) -> Arrays:
    """What a chunk needs; the worker that read every array for the run reuses them."""
    if _cache.get("key") == _cache_key(run) and "full arrays" in _cache:
        return _cache["full arrays"]  # the worker that planned the run: no second copy
    return cached(run, "arrays", lambda: load(run, full=False))
