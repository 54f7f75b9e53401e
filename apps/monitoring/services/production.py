"""Appending production samples (what a deployed model saw) in batches, all or nothing.

A batch is checked row by row first; any problem refuses the whole batch with every problem by
row number and field, and nothing is written. A valid batch is written in one transaction:
samples with split "production", no label, and the time each was seen (`observed_at`);
their embeddings, and their probabilities as predictions of a model run.

Production samples join the dataset's newest version as they arrive (`added_in` is its number):
they make no version of their own, since a version per batch would bury the versions people
commit. A version's recorded statistics stay as they were when it was committed; exporting
that version includes the production samples appended since.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.datasets.importing.loader import PROB_TOLERANCE
from apps.datasets.importing.values import MAX_ID_LENGTH, id_problem, image_path, json_problem
from apps.datasets.models import (
    Dataset,
    Embedding,
    EmbeddingSpace,
    Modality,
    ModelRun,
    Prediction,
    Sample,
    Split,
)
from apps.datasets.selectors import embed_texts
from apps.monitoring.models import MonitoringPolicy

PRODUCTION_MAX_ROWS = 10_000
MAX_PROBLEMS = 100
FUTURE_TOLERANCE = timedelta(days=1)  # clocks differ; a timestamp further ahead is a mistake
ROW_KEYS = ("id", "text", "image", "fields", "embedding", "probabilities", "timestamp", "metadata")
CONTENT_KEY = {Modality.TEXT: "text", Modality.IMAGE: "image", Modality.TABULAR: "fields"}


class ProductionRefused(ValidationError):
    """The batch was refused and nothing was written. `problems` lists the first problems
    ({row, field, message, code}; row is 1-based, None for the batch as a whole) and
    `problem_count` how many there were."""

    def __init__(self, problems: list[dict], count: int):
        self.problems = problems
        self.problem_count = count
        first = problems[0] if problems else {}
        where = f"row {first['row']}, " if first.get("row") else ""
        plural = "s" if count != 1 else ""
        super().__init__(
            f"Production samples refused, nothing was written: {count} problem{plural}; first: "
            f"{where}{first.get('field')}: {first.get('message')}",
            code="refused",
        )


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict] = []
        self.count = 0

    def add(self, row: int | None, field: str, message: str, code: str = "invalid") -> None:
        self.count += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append({"row": row, "field": field, "message": message, "code": code})

    def raise_if_any(self) -> None:
        if self.count:
            self.items.sort(key=lambda p: p["row"] or 0)
            raise ProductionRefused(self.items, self.count)


def resolve_space(dataset: Dataset, name: str = "") -> EmbeddingSpace | None:
    """The embedding space production samples go into and drift is measured in: the one named,
    else the project's monitoring space, else the space named "default", else the oldest."""
    spaces = dataset.embedding_spaces.all()
    if name:
        return spaces.filter(name=name).first()
    preferred = (
        MonitoringPolicy.objects.filter(project_id=dataset.project_id)
        .values_list("embedding_space", flat=True)
        .first()
    )
    for candidate in (preferred, "default"):
        if candidate:
            space = spaces.filter(name=candidate).first()
            if space is not None:
                return space
    return spaces.order_by("id").first()


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    """A number a float holds (JSON integers can be too big for one)."""
    try:
        return _number(value) and math.isfinite(value)
    except OverflowError:
        return False


def _storable(value: Any) -> bool:
    """No text in `value`, keys included, that PostgreSQL refuses (NUL, a lone surrogate), and
    no nesting deeper than the import limit."""
    return json_problem(value) is None


def _floats(value: Any) -> np.ndarray | None:
    """A list of numbers as float64, None when it is not one; an integer beyond any float
    reads as infinity."""
    if not isinstance(value, list | tuple) or not all(_number(v) for v in value):
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except OverflowError:
        return np.array([v if _finite(v) else np.inf for v in value], dtype=np.float64)


def _float32(vector: np.ndarray) -> np.ndarray | None:
    """As stored (float32), None when a value is NaN, infinite or beyond float32's range."""
    with np.errstate(over="ignore"):
        stored = vector.astype(np.float32)
    return stored if np.isfinite(stored).all() else None


def _timestamp(value: Any) -> datetime | str:
    """An aware datetime, or why the value is not one."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return f"{value!r} is not an ISO 8601 time, e.g. 2025-11-03T14:05:00Z"
    else:
        return "give an ISO 8601 time with a timezone, e.g. 2025-11-03T14:05:00Z"
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return f"{value!r} has no timezone; add one, e.g. Z or +01:00"
    try:
        # In UTC: PostgreSQL refuses offsets Python accepts (beyond 15:59).
        return parsed.astimezone(UTC)
    except OverflowError:
        return f"{value!r} is out of range"


class _Checker:
    """Checks rows one at a time; keeps what a valid batch will write."""

    def __init__(self, dataset: Dataset, problems: _Problems, space, run, now: datetime):
        self.dataset, self.problems = dataset, problems
        self.space, self.run, self.now = space, run, now
        self.content = CONTENT_KEY[Modality(dataset.modality)]
        self.classes = list(run.classes) if run is not None else list(dataset.labels)
        self.seen: dict[str, int] = {}

    def row(self, number: int, row: Any) -> dict | None:
        add = self.problems.add
        if not isinstance(row, dict):
            add(number, "-", "each row is an object with id, content and timestamp")
            return None
        for key in row:
            if key not in ROW_KEYS:
                add(number, str(key), f"unknown field; a row has {', '.join(ROW_KEYS)}")
        out: dict[str, Any] = {}
        ext = row.get("id")
        if isinstance(ext, int) and not isinstance(ext, bool):
            ext = str(ext)
        if not isinstance(ext, str) or not ext.strip():
            add(number, "id", "missing id (a string, unique in the dataset)", "required")
        elif id_problem(ext):
            add(number, "id", f"an id is text of at most {MAX_ID_LENGTH} characters, without NUL")
        else:
            ext = ext.strip()
            if ext in self.seen:
                add(
                    number,
                    "id",
                    f"duplicate id {ext!r} (first on row {self.seen[ext]})",
                    "duplicate",
                )
            else:
                self.seen[ext] = number
            out["id"] = ext
        out.update(self._content(number, row))
        out["embedding"] = self._embedding(number, row.get("embedding"))
        out["probs"] = self._probabilities(number, row.get("probabilities"))
        stamp = row.get("timestamp")
        if stamp is None:
            out["observed_at"] = self.now
        else:
            parsed = _timestamp(stamp)
            if isinstance(parsed, str):
                add(number, "timestamp", parsed)
            elif parsed > self.now + FUTURE_TOLERANCE:
                add(number, "timestamp", f"{stamp} is more than a day ahead of the server's clock")
            else:
                out["observed_at"] = parsed
        meta = row.get("metadata")
        if meta is None:
            out["metadata"] = {}
        elif not isinstance(meta, dict):
            add(number, "metadata", "metadata is an object of names and values")
        elif problem := json_problem(meta):  # first: the encoder below recurses
            add(number, "metadata", f"metadata {problem}")
        else:
            try:
                json.dumps(meta, allow_nan=False)
            except (TypeError, ValueError):
                add(number, "metadata", "metadata must be plain JSON (no NaN or infinity)")
            else:
                out["metadata"] = meta
        return out

    def _content(self, number: int, row: dict) -> dict:
        add = self.problems.add
        text, image, fields = row.get("text"), row.get("image"), row.get("fields")
        out: dict[str, Any] = {"text": "", "image": "", "fields": None}
        if text is not None and (not isinstance(text, str) or not _storable(text)):
            add(number, "text", "text is a string, without NUL or lone surrogates")
        elif text is not None:
            out["text"] = text
        if image is not None and (
            not isinstance(image, str) or not image.strip() or not _storable(image)
        ):
            add(number, "image", "image is the path of an image in the dataset's media")
        elif image is not None:
            try:
                out["image"] = image_path(image)
            except ValueError as exc:
                add(number, "image", str(exc))
        if fields is not None:
            if (
                not isinstance(fields, dict)
                or not _storable(fields)
                or not all(
                    isinstance(k, str) and (v is None or isinstance(v, str | bool) or _finite(v))
                    for k, v in fields.items()
                )
            ):
                add(number, "fields", "fields is an object of feature names and plain values")
            else:
                out["fields"] = fields
        missing = {
            "text": not out["text"].strip(),
            "image": not out["image"],
            "fields": not out["fields"],
        }[self.content]
        if missing and self.content not in {p["field"] for p in self._row_problems(number)}:
            kind = self.dataset.get_modality_display().lower()
            add(number, self.content, f"a {kind} dataset's samples need {self.content}", "required")
        return out

    def _row_problems(self, number: int) -> list[dict]:
        return [p for p in self.problems.items if p["row"] == number]

    def _embedding(self, number: int, value: Any) -> np.ndarray | None:
        if value is None:
            return None
        add = self.problems.add
        if self.space is None:
            return None  # said once for the batch
        vector = _floats(value)
        if vector is None:
            add(number, "embedding", "an embedding is a list of numbers")
            return None
        if len(value) != self.space.dimension:
            add(
                number,
                "embedding",
                f"has {len(value)} values; the embedding space {self.space.name!r} has "
                f"{self.space.dimension}",
            )
            return None
        stored = _float32(vector)
        if stored is None:
            add(number, "embedding", "has NaN, infinite or too large values")
        return stored

    def _probabilities(self, number: int, value: Any) -> np.ndarray | None:
        if value is None:
            return None
        add = self.problems.add
        if self.run is None:
            add(
                number,
                "probabilities",
                "the dataset has no model run to add them to; log a model run first",
            )
            return None
        if isinstance(value, dict):
            unknown = [str(c) for c in value if c not in self.classes]
            missing = [c for c in self.classes if c not in value]
            if unknown:
                add(
                    number,
                    "probabilities",
                    f"unknown class {unknown[0]!r}; the classes are {', '.join(self.classes)}",
                )
            if missing:
                add(number, "probabilities", f"no probability for class {missing[0]!r}")
            if unknown or missing:
                return None
            value = [value[c] for c in self.classes]
        probs = _floats(value)
        if probs is None:
            add(
                number,
                "probabilities",
                "give {class: probability} or a list in the label schema's order",
            )
            return None
        if len(value) != len(self.classes):
            add(
                number,
                "probabilities",
                f"has {len(value)} values; the classes are {', '.join(self.classes)}",
            )
            return None
        if _float32(probs) is None:
            add(number, "probabilities", "has NaN, infinite or too large values")
            return None
        if ((probs < -1e-6) | (probs > 1 + 1e-6)).any():
            add(number, "probabilities", "probabilities must lie between 0 and 1")
            return None
        if abs(probs.sum() - 1.0) > PROB_TOLERANCE:
            add(number, "probabilities", f"probabilities sum to {probs.sum():.4f}, not 1")
            return None
        return probs.astype(np.float32)


def production_append(
    *,
    dataset: Dataset,
    rows: list[dict],
    by,
    embedding_space: str = "",
    model_run: int | None = None,
) -> dict:
    """Append production samples, all or nothing; returns what was written.

    Each row: `id` (unique in the dataset), the content (`text`, `image` or `fields` by the
    dataset's modality), optional `embedding` (in `embedding_space`: by default the project's
    monitoring space, else "default", else the dataset's first), optional `probabilities`
    ({class: p} or a list in the schema's order; kept as predictions of the model run
    `model_run`, by default the newest), `timestamp` (ISO 8601 with a timezone; default now)
    and optional `metadata`. Text rows without an embedding get one when the space is one
    Loupe computed. Raises ProductionRefused, listing problems by row and field.

    The writes are one transaction; the rows are checked and text embedded before it, so that
    the dataset's lock is not held while a model runs.
    """
    problems = _Problems()
    now = timezone.now()
    if not isinstance(rows, list) or not rows:
        problems.add(None, "samples", "send a list of at least one sample", "required")
        problems.raise_if_any()
    if len(rows) > PRODUCTION_MAX_ROWS:
        problems.add(
            None,
            "samples",
            f"{len(rows):,} samples in one request; send at most {PRODUCTION_MAX_ROWS:,} at a time",
            "limit",
        )
        problems.raise_if_any()
    space = resolve_space(dataset, embedding_space)
    if embedding_space and space is None:
        names = ", ".join(dataset.embedding_spaces.values_list("name", flat=True)) or "none"
        problems.add(
            None,
            "embedding_space",
            f"no embedding space {embedding_space!r} (the dataset has {names})",
        )
    elif space is None and any(
        isinstance(r, dict) and r.get("embedding") is not None for r in rows
    ):
        problems.add(
            None,
            "embedding",
            "the dataset has no embedding space to add embeddings to: import its training "
            "samples with embeddings first",
        )
    run = None
    if model_run is not None:
        run = ModelRun.objects.filter(dataset=dataset, pk=model_run).first()
        if run is None:
            problems.add(None, "model_run", f"no model run {model_run} in this dataset")
    elif any(isinstance(r, dict) and r.get("probabilities") is not None for r in rows):
        run = dataset.model_runs.order_by("-created_at", "-id").first()
    if run is not None and list(run.classes) != list(dataset.labels):
        problems.add(
            None, "model_run", f"the model run {run.name!r} has other classes than the dataset"
        )
    checker = _Checker(dataset, problems, space, run, now)
    # A row is None only when a problem was recorded for it, and then raise_if_any raises.
    checked = cast(
        list[dict[str, Any]],
        [checker.row(number, row) for number, row in enumerate(rows, start=1)],
    )
    problems.raise_if_any()

    vectors = [row["embedding"] for row in checked]
    computed = 0
    missing = [i for i, v in enumerate(vectors) if v is None]
    if space is not None and missing and dataset.modality == Modality.TEXT:
        try:
            found = embed_texts(space, [checked[i]["text"] for i in missing])
        except LookupError:
            pass  # a space Loupe cannot embed text into: those rows stay without a vector
        else:
            for i, vector in zip(missing, found, strict=True):
                if np.any(vector):  # no known word: no direction, so no vector
                    vectors[i] = vector
                    computed += 1

    with transaction.atomic():
        # One writer per dataset at a time, as for imports and commits.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        version = dataset.versions.order_by("-number").values_list("number", flat=True).first()
        if version is None:
            problems.add(
                None,
                "dataset",
                "the dataset has no version yet: import its training samples first",
                "required",
            )
        taken = set(
            Sample.objects.filter(
                dataset=dataset, external_id__in=[r["id"] for r in checked]
            ).values_list("external_id", flat=True)
        )
        for number, row in enumerate(checked, start=1):
            if row["id"] in taken:
                problems.add(number, "id", f"id {row['id']!r} is already in the dataset", "exists")
        problems.raise_if_any()
        assert version is not None  # a missing version is a problem raised just above
        try:
            with transaction.atomic():
                samples = Sample.objects.bulk_create(
                    [
                        Sample(
                            dataset=dataset,
                            external_id=row["id"],
                            split=Split.PRODUCTION,
                            label=None,
                            first_label=None,
                            added_in=version,
                            text=row["text"],
                            image=row["image"],
                            fields=row["fields"],
                            metadata=row["metadata"],
                            observed_at=row["observed_at"],
                        )
                        for row in checked
                    ],
                    batch_size=2_000,
                )
        except IntegrityError:  # a concurrent writer took an id after the check
            problems.add(
                None, "id", "some ids were added meanwhile; send the batch again", "exists"
            )
            problems.raise_if_any()
        embeddings = [
            Embedding(space=space, sample_id=s.pk, vector=v)
            for s, v in zip(samples, vectors, strict=True)
            if v is not None
        ]
        Embedding.objects.bulk_create(embeddings, batch_size=2_000)
        predictions = [
            Prediction(run=run, sample_id=s.pk, epoch=0, probs=row["probs"])
            for s, row in zip(samples, checked, strict=True)
            if row["probs"] is not None
        ]
        Prediction.objects.bulk_create(predictions, batch_size=2_000)
    stamps = [row["observed_at"] for row in checked]
    return {
        "appended": len(samples),
        "embeddings": len(embeddings),
        "embeddings_computed": computed,
        "predictions": len(predictions),
        "version": version,
        "embedding_space": space.name if space is not None and embeddings else None,
        "model_run": run.pk if run is not None and predictions else None,
        "first_observed_at": min(stamps).isoformat(),
        "last_observed_at": max(stamps).isoformat(),
    }
