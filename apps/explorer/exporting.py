"""The sample table as a file: the rows of its query, in its ordering, with its columns, as CSV or
Parquet, written a batch at a time so that a million rows never sit in memory together.

Rows are read by the table's own keyset pages (`selectors.sample_page`, a cursor after each
batch), so an export holds what the table lists, in its order; each batch's scores and tags are
read in one query each, like a page of the table. CSV goes out a batch at a time; Parquet as one
row group per batch, the bytes the writer produced sent on as they come.

Values: lists (tags, flags) are lists in Parquet and JSON arrays in CSV; a metadata column is
text (a string as it is, any other value as JSON), empty where the sample has no such key.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apps.core import events
from apps.core.csv import csv_writer
from apps.datasets.models import Dataset, Sample
from apps.datasets.selectors import tags_of_samples
from apps.explorer import selectors
from apps.explorer.columns import is_score
from apps.explorer.query import FIELDS, METADATA, SIMILARITY, QueryError
from apps.quality.models import SampleScore

FORMATS = ("csv", "parquet")
# Said outright: a file name's guess knows no type for Parquet.
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
BATCH = 5_000  # rows a batch: one keyset page, its scores and tags, then one row group


@dataclass
class Export:
    """An export checked and ready to stream: its first batch is already read, so a bad query
    or ordering is an error before the first byte is sent."""

    dataset: Dataset
    found: selectors.Exploration
    columns: list[str]
    fmt: str
    first: selectors.SamplePage

    @property
    def filename(self) -> str:
        """The dataset's name made safe for a header and a file system: letters, digits, `.`,
        `_` and `-` only."""
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", self.dataset.name).strip("-.") or "dataset"
        return f"{name[:80]}-samples.{self.fmt}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]

    def stream(self) -> Iterator[bytes]:
        batches = _batches(self.dataset, self.found, self.first, self.columns)
        if self.fmt == "csv":
            return _csv(self.columns, batches)
        return _parquet(self.columns, batches)


def prepare_export(dataset: Dataset, params, *, by) -> Export:
    """Check an export's parameters (the table's q, view, run, ordering, removed; `columns`;
    `format`) and read its first batch. QueryError naming the bad parameter."""
    fmt = params.get("format") or "csv"
    if fmt not in FORMATS:
        raise QueryError("format", f"{fmt!r} is not an export format; use csv or parquet")
    found = selectors.exploration(dataset, params)
    # The table's columns: those asked for, else a saved view's own, else the default. A score
    # column without a finished run is empty, as the table shows it.
    columns = found.columns
    first = _page(dataset, found, None)
    events.record(
        events.Event(
            "samples.exported",
            project=dataset.project,
            actor=by,
            audit=events.Audit(
                target=f"{dataset.name} samples",
                detail={
                    "dataset_id": dataset.pk,
                    "format": fmt,
                    "columns": columns,
                    "query": found.query,
                    "ordering": found.ordering,
                    "run_id": found.run.pk if found.run else None,
                    "removed": found.removed,
                },
            ),
        )
    )
    return Export(dataset, found, columns, fmt, first)


def _page(dataset: Dataset, found: selectors.Exploration, cursor: str | None):
    return selectors.sample_page(
        dataset,
        query=found.query,
        run=found.run,
        ordering=found.ordering,
        cursor=cursor,
        size=BATCH,
        removed=found.removed,
        count=False,
    )


def _batches(
    dataset: Dataset, found: selectors.Exploration, page: selectors.SamplePage, columns: list[str]
) -> Iterator[list[list[Any]]]:
    """The export's rows a batch at a time, each row the columns' values in order."""
    score_columns = [FIELDS[c].column for c in columns if is_score(c)]
    wants_tags = "tags" in columns
    while True:
        ids = [s.pk for s in page.samples]
        scores = _scores(found.run, ids, score_columns)
        tags = tags_of_samples(ids) if wants_tags and ids else {}
        yield [
            [_value(sample, c, scores.get(sample.pk), tags.get(sample.pk, [])) for c in columns]
            for sample in page.samples
        ]
        if not page.next:
            return
        page = _page(dataset, found, page.next)


def _scores(run, ids: list[int], columns: list[str]) -> dict[int, dict]:
    """The run's scores of these samples, only the columns asked for, by sample id."""
    if run is None or not ids or not columns:
        return {}
    rows = SampleScore.objects.filter(run=run, sample_id__in=ids).values_list("sample_id", *columns)
    return {row[0]: dict(zip(columns, row[1:], strict=True)) for row in rows}


def _value(sample: Sample, column: str, scores: dict | None, tags: list[str]) -> Any:
    if column == "tags":
        return tags
    if column == SIMILARITY:
        return getattr(sample, SIMILARITY, None)
    if column.startswith(METADATA):
        metadata = sample.metadata if isinstance(sample.metadata, dict) else {}
        return metadata.get(column[len(METADATA) :])
    if FIELDS[column].score:
        value = scores.get(FIELDS[column].column) if scores else None
        return list(value or []) if column == "flags" else value
    return getattr(sample, column)


# --- CSV ----------------------------------------------------------------------------------------


def _csv(columns: list[str], batches: Iterator[list[list[Any]]]) -> Iterator[bytes]:
    text = io.StringIO()
    writer = csv_writer(text)
    writer.writerow(columns)
    metadata = [c.startswith(METADATA) for c in columns]
    for rows in batches:
        for row in rows:
            writer.writerow([_cell(v, m) for v, m in zip(row, metadata, strict=True)])
        yield text.getvalue().encode()
        text.seek(0)
        text.truncate()


def _cell(value: Any, metadata: bool) -> Any:
    """A CSV cell: lists (and metadata objects) as JSON, times in ISO 8601, metadata's true,
    false and numbers as JSON writes them."""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    if metadata and isinstance(value, bool):
        return json.dumps(value)
    return value


def _text(value: Any) -> str | None:
    """A metadata value in a Parquet text column: a string as it is, anything else as JSON."""
    return (
        value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    )


# --- Parquet ------------------------------------------------------------------------------------


def _arrow_type(column: str):
    import pyarrow as pa

    if column.startswith(METADATA):
        return pa.string()
    if column == SIMILARITY:
        return pa.float64()
    kind = FIELDS[column].kind
    return {
        "number": pa.float64(),
        "integer": pa.int64(),
        "bool": pa.bool_(),
        "list": pa.list_(pa.string()),
        "time": pa.timestamp("us", tz="UTC"),
    }.get(kind, pa.string())


class _Sink(io.RawIOBase):
    """Where the Parquet writer writes: bytes are kept until taken, while the position the
    writer reads back (for the footer's offsets) counts every byte ever written."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._written += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _parquet(columns: list[str], batches: Iterator[list[list[Any]]]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, _arrow_type(c)) for c in columns])
    sink = _Sink()
    with pq.ParquetWriter(sink, schema) as writer:
        for rows in batches:
            if rows:
                values = list(zip(*rows, strict=True))
                for i, column in enumerate(columns):
                    if column.startswith(METADATA):
                        values[i] = tuple(_text(v) for v in values[i])
                writer.write_table(
                    pa.table(
                        {
                            c: pa.array(values[i], type=schema.field(c).type)
                            for i, c in enumerate(columns)
                        },
                        schema=schema,
                    )
                )
            if data := sink.take():
                yield data
    yield sink.take()
