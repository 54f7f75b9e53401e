"""Model runs: checking a model-run import's options, and computing the run's metrics."""

from __future__ import annotations

import numpy as np
from django.core.exceptions import ValidationError
from django.db.models import Max

from apps.config.parsers import json_loads
from apps.datasets.models import ModelRun, Prediction
from workers.engine.metrics import split_metrics


def model_run_options(*, name: str, metrics=None, embedding_space: str = "") -> dict:
    """Check what a model-run import needs besides its file: a name, and metrics as a JSON object."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the model run."})
    if isinstance(metrics, str):
        try:
            metrics = json_loads(metrics) if metrics.strip() else {}
        except ValueError:
            raise ValidationError(
                {"metrics": 'Metrics must be a JSON object, e.g. {"test": {"accuracy": 0.9}}.'}
            ) from None
    metrics = metrics or {}
    if not isinstance(metrics, dict):
        raise ValidationError(
            {"metrics": 'Metrics must be a JSON object, e.g. {"test": {"accuracy": 0.9}}.'}
        )
    return {"name": name, "metrics": metrics, "embedding_space": (embedding_space or "").strip()}


def model_run_compute_metrics(*, run_id: int) -> dict | None:
    """Accuracy and macro F1 per split of the run's final probabilities against the current
    labels, kept in the run's metrics under "computed" beside what the user logged."""

    run = ModelRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    index = {label: i for i, label in enumerate(run.classes)}
    # The final probabilities: epoch 0 when logged, else the last epoch's.
    predictions = Prediction.objects.filter(run=run)
    epoch = (
        0 if predictions.filter(epoch=0).exists() else predictions.aggregate(e=Max("epoch"))["e"]
    )
    rows = list(
        Prediction.objects.filter(run=run, epoch=epoch, sample__active=True).values_list(
            "probs", "sample__label", "sample__split"
        )
    )
    if not rows:
        return None
    probs = np.array([np.asarray(r[0], dtype=np.float32) for r in rows])
    labels = np.array([index.get(r[1], -1) if r[1] is not None else -1 for r in rows])
    splits = np.array([r[2] for r in rows])
    computed = split_metrics(probs, labels, splits)
    ModelRun.objects.filter(pk=run.pk).update(metrics={**run.metrics, "computed": computed})
    return computed
