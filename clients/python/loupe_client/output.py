"""Samples written as they are fetched, a page at a time: CSV, a JSON array, JSON lines, Parquet."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import IO, Any

from loupe_client.records import arrow, json_default

PAGE = 1000  # rows per Parquet row group, and rows looked at to choose the columns
INTEGER_COLUMNS = ("id", "added_in")


def flatten(sample: Mapping[str, Any]) -> dict[str, Any]:
    """One table row: each score as its own `scores.<name>` column; lists and objects
    (tags, metadata, fields) as JSON text."""
    row: dict[str, Any] = {}
    for key, value in sample.items():
        if key == "scores":
            for name, score in (value or {}).items():
                row[f"scores.{name}"] = _cell(score)
        else:
            row[key] = _cell(value)
    return row


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=json_default, ensure_ascii=False)
    return value


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def write_csv(
    samples: Iterable[Mapping[str, Any]], out: IO[str], tick: Callable[[int], None]
) -> int:
    """The columns are those of the first page of samples (a later sample's others are left out)."""
    rows = (flatten(s) for s in samples)
    first = list(islice(rows, PAGE))
    writer = csv.DictWriter(out, fieldnames=_columns(first), extrasaction="ignore")
    writer.writeheader()
    n = 0
    for row in _chain(first, rows):
        writer.writerow(row)
        n += 1
        tick(n)
    return n


def write_json(
    samples: Iterable[Mapping[str, Any]], out: IO[str], tick: Callable[[int], None], *, lines: bool
) -> int:
    """A JSON array (or JSON lines), the samples as the API gives them."""
    n = 0
    if not lines:
        out.write("[")
    for sample in samples:
        text = json.dumps(sample, default=json_default, ensure_ascii=False)
        if lines:
            out.write(text + "\n")
        else:
            out.write(("\n  " if n == 0 else ",\n  ") + text)
        n += 1
        tick(n)
    if not lines:
        out.write("\n]\n" if n else "]\n")
    return n


def write_parquet_rows(
    samples: Iterable[Mapping[str, Any]], out: IO[bytes], tick: Callable[[int], None]
) -> int:
    """Parquet, a row group a page. A column's type is chosen from the first page (numbers as
    float64, ids as int64, else text); a later value that is not of its column's type is left
    empty (null), so ask for CSV or JSON when a column mixes types."""
    pa, pq = arrow()
    rows = (flatten(s) for s in samples)
    first = list(islice(rows, PAGE))
    columns = _columns(first)
    kinds = {c: _kind([r.get(c) for r in first], integer=c in INTEGER_COLUMNS) for c in columns}
    types = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
    schema = pa.schema([pa.field(c, types[kinds[c]]) for c in columns])
    n = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for page in _pages(_chain(first, rows)):
            arrays = [
                pa.array([_as(kinds[c], r.get(c)) for r in page], type=types[kinds[c]])
                for c in columns
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            n += len(page)
            tick(n)
    return n


def _kind(values: list[Any], *, integer: bool) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "int" if integer and all(isinstance(v, int) for v in present) else "float"
    return "str"


def _as(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "str":
        return value if isinstance(value, str) else json.dumps(value, default=json_default)
    if isinstance(value, bool) != (kind == "bool") or not isinstance(value, int | float):
        return None  # a value of another type than its column's: left empty, not made up
    return float(value) if kind == "float" else value


def _chain(first: list[dict[str, Any]], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from first
    yield from rest


def _pages(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while page := list(islice(rows, PAGE)):
        yield page
