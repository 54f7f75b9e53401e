"""Records (a list of dicts or a DataFrame, with aligned arrays) written as Parquet files in
the server's import conventions, a row group at a time so memory stays bounded."""

from __future__ import annotations

import csv
import importlib
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROW_GROUP_ROWS = 10_000  # the server reads Parquet in batches of this many rows
ROW_GROUP_BYTES = 64 * 1024 * 1024  # fewer rows per group when the vectors are wide
STRING_COLUMNS = ("id", "label", "split", "text", "image")
VECTOR_COLUMNS = ("embedding", "probs")

Matrix = npt.NDArray[Any]


def arrow() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, imported when first needed (pyarrow is slow to import).
    They are typed as Any: pyarrow ships no type information, and an import done this way
    needs no `type: ignore` that a checker's settings could make wrong."""
    return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")


def file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "dataset"


def guess_modality(columns: Sequence[str]) -> str:
    """As the server guesses: a `text` column makes a text dataset, `image` an image one."""
    if "text" in columns:
        return "text"
    if "image" in columns:
        return "image"
    return "tabular"


def file_columns(path: Path, fmt: str | None) -> list[str] | None:
    """The columns of a Parquet, CSV or JSON lines file; None for another format."""
    if fmt == "parquet":
        _pa, pq = arrow()
        return [str(name) for name in pq.read_schema(path).names]
    if fmt == "csv":
        # As the server reads it: UTF-16 by its mark, else UTF-8 (other bytes do not matter for
        # the names); a comma between the names, else the most frequent of ; tab |.
        with path.open("rb") as f:
            head = f.read(64 * 1024)
        utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
        text = head.decode("utf-16" if utf16 else "utf-8-sig", errors="replace").lstrip("\ufeff")
        line = text.splitlines()[0] if text else ""
        delimiter = "," if "," in line else max(",;\t|", key=line.count)
        return next(csv.reader([line], delimiter=delimiter), [])
    if fmt == "jsonl":
        with path.open(encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), "{}")
        row = json.loads(first)
        return [str(key) for key in row] if isinstance(row, dict) else []
    return None


def as_matrix(values: Any, n: int, name: str) -> Matrix | None:
    """An (n, d) array, not yet converted to float32: chunks are converted as they are written."""
    if values is None:
        return None
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[0] != n or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be an (n, d) array with one row per record ({n}); got shape {array.shape}."
        )
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must hold numbers, not {array.dtype}.")
    return array


class Records:
    """A list of dicts or a DataFrame, read in slices of plain dicts."""

    def __init__(self, records: Any):
        self.frame: Any = None
        pandas = sys.modules.get("pandas")  # a DataFrame means pandas is imported already
        if pandas is not None and isinstance(records, pandas.DataFrame):
            self.frame = records
            self.columns = [str(c) for c in records.columns]
            if len(set(self.columns)) != len(self.columns):
                raise ValueError("The DataFrame has duplicate column names.")
            self.rows: Sequence[Mapping[str, Any]] = ()
        else:
            if isinstance(records, Mapping | str | bytes):
                raise TypeError("Give records as a list of dicts or a pandas DataFrame.")
            self.rows = records if isinstance(records, Sequence) else list(records)
            seen: dict[str, None] = {}
            for i, row in enumerate(self.rows):
                if not isinstance(row, Mapping):
                    raise TypeError(f"Record {i} is a {type(row).__name__}, not a dict.")
                for key in row:
                    if not isinstance(key, str):
                        raise TypeError(f"Record {i} has a key {key!r} that is not a string.")
                    seen.setdefault(key, None)
            self.columns = list(seen)
        if not len(self):
            raise ValueError("There are no records to log.")
        if "id" not in self.columns:
            raise ValueError("The records need an 'id' each.")

    def __len__(self) -> int:
        return len(self.frame) if self.frame is not None else len(self.rows)

    def slice(self, start: int, stop: int) -> Sequence[Mapping[str, Any]]:
        if self.frame is None:
            return self.rows[start:stop]
        part = self.frame.iloc[start:stop]
        return [dict(zip(self.columns, row, strict=True)) for row in part.itertuples(index=False)]


def missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return False


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _kind(value: Any) -> str:
    if missing(value):
        return "null"
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Mapping | list | tuple | np.ndarray):
        return "json"
    return "str"


def _resolve_kind(kinds: set[str]) -> str:
    kinds = kinds - {"null"}
    if not kinds:
        return "str"
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds <= {"bool", "int"}:
        return "int"
    if kinds <= {"bool", "int", "float"}:
        return "float"
    return "str"  # mixed: text is the one type every value can take


def as_text(value: Any) -> str | None:
    if missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple | np.ndarray):
        return json.dumps(value, default=json_default)
    return str(value.item() if isinstance(value, np.generic) else value)


def _as_metadata(value: Any) -> str | None:
    if missing(value):
        return None
    if isinstance(value, str):
        return value  # JSON text already
    if isinstance(value, Mapping):
        value = dict(value)
    return json.dumps(value, default=json_default)


def _converter(kind: str) -> Callable[[Any], Any]:
    scalar = {"bool": bool, "int": int, "float": float}.get(kind)
    if scalar is None:
        return as_text
    return lambda v: None if missing(v) else scalar(v)


def vector_values(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return np.asarray(value, dtype=np.float32).ravel()


def fixed_size_list(matrix: Matrix) -> Any:
    pa, _pq = arrow()

    flat = np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), matrix.shape[1])


def write_parquet(
    path: str | Path,
    records: Any,
    *,
    embeddings: Any = None,
    probs: Any = None,
    progress: Callable[[float], None] | None = None,
) -> int:
    """Write records (and aligned embeddings / probs arrays) as one Parquet file in the import
    conventions, a row group at a time so memory stays bounded. Returns the number of rows."""
    pa, pq = arrow()

    source = records if isinstance(records, Records) else Records(records)
    n = len(source)
    emb = as_matrix(embeddings, n, "embeddings") if embeddings is not None else None
    prob = as_matrix(probs, n, "probs") if probs is not None else None
    width = sum(m.shape[1] for m in (emb, prob) if m is not None)
    group = max(256, min(ROW_GROUP_ROWS, ROW_GROUP_BYTES // (4 * width + 1)))

    # One pass to fix every column's type: Arrow would guess per row group, and a column that
    # is empty in one group and numbers in the next must not change type between them.
    other = [c for c in source.columns if c not in (*STRING_COLUMNS, "metadata", *VECTOR_COLUMNS)]
    kinds: dict[str, set[str]] = {c: set() for c in other}
    if other:
        for start in range(0, n, group):
            for row in source.slice(start, start + group):
                for column in other:
                    kinds[column].add(_kind(row.get(column)))
    arrow_types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64()}
    fields = []
    converters: dict[str, Callable[[Any], Any]] = {}
    for column in source.columns:
        if column in VECTOR_COLUMNS:
            fields.append(pa.field(column, pa.list_(pa.float32())))
            converters[column] = vector_values
        elif column == "metadata":
            fields.append(pa.field(column, pa.string()))
            converters[column] = _as_metadata
        elif column in STRING_COLUMNS:
            fields.append(pa.field(column, pa.string()))
            converters[column] = as_text
        else:
            kind = _resolve_kind(kinds[column])
            fields.append(pa.field(column, arrow_types.get(kind, pa.string())))
            converters[column] = _converter(kind)
    given = {"embedding": emb, "probs": prob}
    for column, matrix in given.items():
        if matrix is not None:
            fields.append(pa.field(column, pa.list_(pa.float32(), matrix.shape[1])))
    schema = pa.schema(fields)

    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for start in range(0, n, group):
            stop = min(n, start + group)
            rows = source.slice(start, stop)
            arrays = []
            for f in schema:
                matrix = given.get(f.name)
                if matrix is not None and f.name not in source.columns:
                    arrays.append(fixed_size_list(matrix[start:stop]))
                else:
                    convert = converters[f.name]
                    arrays.append(pa.array([convert(r.get(f.name)) for r in rows], type=f.type))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=group)
            if progress:
                progress(stop / n)
    return n


def write_model_run(
    path: Path,
    ids: list[Any],
    probs_by_epoch: list[Matrix],
    embeddings: Matrix | None,
    *,
    progress: Callable[[float], None],
) -> None:
    """The model-run file: id, epoch (when there are per-epoch probabilities), probs and
    embedding, one row group at a time; epoch 0 holds the final probabilities."""
    pa, pq = arrow()

    n, k = probs_by_epoch[0].shape
    width = k + (embeddings.shape[1] if embeddings is not None else 0)
    group = max(256, min(ROW_GROUP_ROWS, ROW_GROUP_BYTES // (4 * width + 1)))
    with_epochs = len(probs_by_epoch) > 1
    fields = [pa.field("id", pa.string())]
    if with_epochs:
        fields.append(pa.field("epoch", pa.int64()))
    fields.append(pa.field("probs", pa.list_(pa.float32(), k)))
    if embeddings is not None:
        fields.append(pa.field("embedding", pa.list_(pa.float32(), embeddings.shape[1])))
    schema = pa.schema(fields)
    total = n * len(probs_by_epoch)
    done = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for epoch, probs in enumerate(probs_by_epoch):
            for start in range(0, n, group):
                stop = min(n, start + group)
                arrays = [pa.array([as_text(i) for i in ids[start:stop]], type=pa.string())]
                if with_epochs:
                    arrays.append(pa.array(np.full(stop - start, epoch, dtype=np.int64)))
                arrays.append(fixed_size_list(probs[start:stop]))
                if embeddings is not None:
                    arrays.append(fixed_size_list(embeddings[start:stop]))
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                done += stop - start
                progress(done / total)
