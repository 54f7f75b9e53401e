"""Production monitoring: appending what a deployed model saw, in all-or-nothing batches."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from loupe_client.base import ClientBase, Ref, ref_id
from loupe_client.errors import LoupeError, ProductionRefused, server_message
from loupe_client.records import (
    Records,
    as_matrix,
    as_text,
    json_default,
    missing,
    vector_values,
)
from loupe_client.types import ProductionTotals, Progress

PRODUCTION_BATCH_MAX = 10_000  # the server's limit per request
PRODUCTION_KEYS = ("id", "text", "image", "timestamp")


def _timestamp_text(value: Any, where: str) -> str:
    """`where` names the value in an error: "timestamps[3]", "records[3]['timestamp']"."""
    if isinstance(value, str):
        return value
    if hasattr(value, "isoformat") and hasattr(value, "utcoffset"):  # datetime, pandas Timestamp
        if value.utcoffset() is None:
            raise ValueError(f"{where} has no timezone: give aware datetimes (e.g. tz=UTC).")
        return str(value.isoformat())
    raise ValueError(f"{where} is a {type(value).__name__}, not a datetime or text.")


def _production_row(
    record: Mapping[str, Any],
    *,
    index: int,
    embedding: Any,
    probabilities: Any,
    timestamp: str | None,
) -> dict[str, Any]:
    """A record in the import conventions as a row of the production API: id and content,
    feature columns gathered under `fields`, `meta_<name>` keys under `metadata`."""
    row: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for key, value in record.items():
        if key in PRODUCTION_KEYS:
            if not missing(value):
                row[key] = (
                    _timestamp_text(value, f"records[{index}]['timestamp']")
                    if key == "timestamp"
                    else as_text(value)
                )
        elif key == "metadata":
            if isinstance(value, str):
                value = json.loads(value)
            if not missing(value):
                metadata.update(dict(value))
        elif key.startswith("meta_"):
            metadata[key[len("meta_") :]] = _plain_value(value)
        elif key == "embedding":
            row["embedding"] = None if missing(value) else vector_values(value).tolist()
        elif key in ("probs", "probabilities"):
            if isinstance(value, Mapping):
                row["probabilities"] = dict(value)
            elif not missing(value):
                row["probabilities"] = vector_values(value).tolist()
        else:
            fields[key] = _plain_value(value)
    if fields:
        row["fields"] = fields
    if metadata:
        row["metadata"] = metadata
    if embedding is not None:
        row["embedding"] = np.asarray(embedding, dtype=np.float64).tolist()
    if probabilities is not None:
        row["probabilities"] = (
            dict(probabilities)
            if isinstance(probabilities, Mapping)
            else np.asarray(probabilities, dtype=np.float64).tolist()
        )
    if timestamp is not None:
        row["timestamp"] = timestamp
    return row


def _plain_value(value: Any) -> Any:
    if missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _quiet(stage: str, fraction: float) -> None:
    """Progress heard by no one."""


class ProductionMixin(ClientBase):
    """Production samples."""

    def append_production(
        self,
        dataset: Ref,
        records: Any,
        *,
        embeddings: Any = None,
        probabilities: Any = None,
        timestamps: Any = None,
        batch_size: int = 1000,
        embedding_space: str | None = None,
        model_run: int | None = None,
        progress: Progress | None = None,
    ) -> ProductionTotals:
        """Append production samples (what a deployed model saw) in batches of `batch_size`.

        `records`: a list of dicts or a DataFrame in the import conventions, without labels:
        `id`, `text` | `image` | feature columns, `metadata` dict or `meta_<name>` keys, and
        optionally `timestamp`. `embeddings`: an (n, d) array; `probabilities`: an (n, k) array
        in the label schema's order (or a list of {class: p} dicts), kept under the model run
        `model_run` (default: the dataset's newest); `timestamps`: one timezone-aware datetime
        or ISO 8601 string per record, when each was seen (default: now).

        Each batch is all or nothing. A refused batch raises ProductionRefused with its problems
        (rows numbered within the whole call); the batches before it stay appended. A batch
        whose answer was lost is sent again, and counted once. Returns the totals: appended,
        embeddings, predictions, batches.
        """
        if batch_size < 1 or batch_size > PRODUCTION_BATCH_MAX:
            raise ValueError(f"batch_size must be from 1 to {PRODUCTION_BATCH_MAX}.")
        source = Records(records)
        n = len(source)
        for column in ("label", "split"):
            if column in source.columns:
                raise ValueError(
                    f"Production records have no {column!r}: they are unlabelled, in the "
                    "production split."
                )
        emb = as_matrix(embeddings, n, "embeddings")
        probs = probabilities
        if probs is not None and not (
            isinstance(probs, Sequence) and len(probs) and isinstance(probs[0], Mapping)
        ):
            probs = as_matrix(probs, n, "probabilities")
        elif probs is not None and len(probs) != n:
            raise ValueError(f"probabilities has {len(probs)} rows for {n} records.")
        stamps = None
        if timestamps is not None:
            stamps = list(timestamps)
            if len(stamps) != n:
                raise ValueError(f"timestamps has {len(stamps)} values for {n} records.")
            stamps = [_timestamp_text(t, f"timestamps[{i}]") for i, t in enumerate(stamps)]
        report: Progress = progress or _quiet
        dataset_id = ref_id(dataset)
        totals: ProductionTotals = {"appended": 0, "embeddings": 0, "predictions": 0, "batches": 0}
        report("append", 0.0)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            rows = [
                _production_row(
                    record,
                    index=i,
                    embedding=None if emb is None else emb[i],
                    probabilities=None if probs is None else probs[i],
                    timestamp=None if stamps is None else stamps[i],
                )
                for i, record in zip(range(start, stop), source.slice(start, stop), strict=True)
            ]
            body: dict[str, Any] = {"samples": rows}
            if embedding_space:
                body["embedding_space"] = embedding_space
            if model_run is not None:
                body["model_run"] = int(model_run)
            result = self._append_batch(dataset_id, body, offset=start)
            totals["appended"] += int(result.get("appended") or 0)
            totals["embeddings"] += int(result.get("embeddings") or 0)
            totals["predictions"] += int(result.get("predictions") or 0)
            totals["batches"] += 1
            report("append", stop / n)
        return totals

    def _append_batch(
        self, dataset_id: int, body: dict[str, Any], *, offset: int
    ) -> dict[str, Any]:
        """POST one batch. It is sent again after a lost answer or a 5xx: a repeat whose first
        attempt went through finds every id already there, and is counted as appended, not as
        a refusal."""
        path = f"datasets/{dataset_id}/production/"
        data = json.dumps(body, default=json_default, allow_nan=False).encode()
        with self.http.request(
            "POST",
            path,
            ok=(201, 400),
            data=data,
            headers={"Content-Type": "application/json"},
        ) as resp:
            status, answer = resp.status_code, resp.json()
            retries = getattr(resp.raw, "retries", None)
            repeated = bool(retries is not None and retries.history)
        if status == 201:
            return cast(dict[str, Any], answer)
        problems = answer.get("problems") if isinstance(answer, dict) else None
        if problems is None:
            raise LoupeError(
                f"400 from POST {path}: {server_message(answer)}", status=400, detail=answer
            )
        rows = len(body["samples"])
        if (
            repeated
            and answer.get("problem_count") == rows
            and all(p.get("code") == "exists" for p in problems)
        ):
            return {"appended": rows, "embeddings": None, "predictions": None}
        raise ProductionRefused(answer, offset=offset)
