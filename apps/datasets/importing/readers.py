"""Stream CSV, JSONL and Parquet files as batches in the documented column conventions.

Memory stays flat: CSV and JSONL are read a line at a time, Parquet a row group batch at a
time. Every batch comes out in one shape, whatever the format: lists of Python values for the
scalar columns and float32 matrices for embeddings and probabilities, with the problems found
while parsing (row and column named).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from apps.core.text import text_problem
from apps.datasets.importing.mapping import MappingRefused, conventional_names
from apps.datasets.importing.values import MAX_METADATA_DEPTH

FORMATS = ("csv", "jsonl", "parquet")
BATCH_ROWS = 25_000
_EMB_COLUMN = re.compile(r"^emb_(\d+)$")


class FileRefused(Exception):
    """The file as a whole cannot be read (unknown format, malformed header, not Parquet)."""


class ColumnRefused(FileRefused):
    """One of the file's columns cannot be read as it is named or mapped."""

    def __init__(self, column: str, message: str):
        self.column = column
        self.message = message
        super().__init__(f"Column {column!r}: {message}.")


@dataclass
class Problem:
    row: int | None  # 1-based data row; None for the file or header
    column: str
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "file"
        return f"{where}, column {self.column!r}: {self.message}"


@dataclass
class Layout:
    """Which column plays which part, read from the header."""

    columns: list[str]
    embedding: str | list[str] | None = None  # "embedding", or the emb_0 … emb_{d-1} columns
    probs: str | dict[str, str] | None = None  # "probs", or {class: "prob_<class>"}
    meta: dict[str, str] = field(default_factory=dict)  # metadata key -> column
    features: list[str] = field(default_factory=list)  # tabular feature columns
    # The name each of the file's columns is read under (None: left out), and the file's name
    # of each renamed column, for problems to name the column the user knows.
    names: list[str | None] = field(default_factory=list)
    original: dict[str, str] = field(default_factory=dict)

    @property
    def prob_classes(self) -> list[str] | None:
        return list(self.probs) if isinstance(self.probs, dict) else None


_KNOWN = {"id", "label", "split", "text", "image", "embedding", "probs", "metadata"}


def layout_from_header(
    header: list[str],
    *,
    tabular: bool,
    mapping: dict[str, str] | None = None,
    generate_ids: bool = False,
) -> Layout:
    """The layout of a file with this header: the columns' roles by their names, or as mapped."""
    for column in header:
        if problem := text_problem(str(column)):
            raise FileRefused(f"The column name {column!r} {problem}.")
    if len(set(header)) != len(header):
        dupes = sorted({c for c in header if header.count(c) > 1})
        raise FileRefused(f"Duplicate column names in the header: {', '.join(dupes)}.")
    try:
        renaming = conventional_names(header, mapping, tabular=tabular)
    except MappingRefused as exc:
        raise ColumnRefused(exc.column, exc.message) from None
    columns = [n for n in renaming.names if n is not None]
    if generate_ids and "id" in columns:
        raise ColumnRefused(
            renaming.original.get("id", "id"),
            "ids are generated: map this column to metadata or ignore it",
        )
    if "id" not in columns and not generate_ids:
        raise FileRefused(
            "The file has no 'id' column; every sample needs an external id (map a column to "
            "id, or generate ids)."
        )
    layout = Layout(columns=columns, names=renaming.names, original=renaming.original)
    emb_cols = {int(m.group(1)): c for c in columns if (m := _EMB_COLUMN.match(c))}
    if emb_cols and "embedding" in columns:
        raise FileRefused(
            "Give embeddings either as an 'embedding' column or as emb_0 … emb_N columns, not both."
        )
    if emb_cols:
        if sorted(emb_cols) != list(range(len(emb_cols))):
            missing = sorted(set(range(max(emb_cols) + 1)) - set(emb_cols))
            raise FileRefused(
                f"Embedding columns must run emb_0 … emb_{max(emb_cols)}; missing emb_{missing[0]}."
            )
        layout.embedding = [emb_cols[i] for i in range(len(emb_cols))]
    elif "embedding" in columns:
        layout.embedding = "embedding"
    prob_cols = {c[len("prob_") :]: c for c in columns if c.startswith("prob_")}
    if prob_cols and "probs" in columns:
        raise FileRefused(
            "Give probabilities either as a 'probs' column or as prob_<class> columns, not both."
        )
    layout.probs = prob_cols or ("probs" if "probs" in columns else None)
    layout.meta = {c[len("meta_") :]: c for c in columns if c.startswith("meta_")}
    used = _KNOWN | set(emb_cols.values()) | set(prob_cols.values()) | set(layout.meta.values())
    others = [c for c in columns if c not in used]
    if others and not tabular:
        raise ColumnRefused(
            others[0],
            "unknown column: name metadata columns meta_<name> or map it to a role; other "
            "columns are features only in tabular datasets",
        )
    layout.features = others
    return layout


@dataclass
class Batch:
    first_row: int
    ids: list[Any]
    splits: list[Any]
    labels: list[Any]
    texts: list[Any]
    images: list[Any]
    features: list[dict | None]
    metadata: list[Any]
    embeddings: np.ndarray | None  # (n, d) float32; rows with problems are NaN
    probs: np.ndarray | None  # (n, k) float32
    problems: list[Problem] = field(default_factory=list)
    prob_classes: list[str] | None = None  # class of each probs column, from prob_<class> names
    emb_column: str = "embedding"  # how problems name the columns: "embedding" or "emb_*"
    prob_column: str = "probs"
    meta_columns: dict[str, str] = field(default_factory=dict)  # metadata key -> meta_<key>
    original: dict[str, str] = field(default_factory=dict)  # read-as name -> the file's column

    def __len__(self) -> int:
        return len(self.ids)


def _parse_scalar(value: str) -> Any:
    """A CSV cell as the JSON value it most likely is: number when it reads as one, else text."""
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        return value
    return int(number) if number.is_integer() and re.fullmatch(r"[+-]?\d+", value) else number


class _RowBuilder:
    """Collects rows given as dicts of Python values into a Batch."""

    def __init__(self, layout: Layout, first_row: int):
        self.layout = layout
        self.first_row = first_row
        self.rows: list[dict] = []
        self.emb: list[Any] = []
        self.probs: list[Any] = []
        self.problems: list[Problem] = []

    def add(self, row: dict) -> None:
        self.rows.append(row)
        lay = self.layout
        if isinstance(lay.embedding, list):
            self.emb.append([row.get(c) for c in lay.embedding])
        elif lay.embedding:
            self.emb.append(row.get(lay.embedding))
        if isinstance(lay.probs, dict):
            self.probs.append([row.get(c) for c in lay.probs.values()])
        elif lay.probs:
            self.probs.append(row.get(lay.probs))

    def _matrix(self, values: list[Any], column: str) -> np.ndarray | None:
        if not values:
            return None
        width = next((len(v) for v in values if isinstance(v, list | tuple) and v), 0)
        out = np.full((len(values), max(width, 1)), np.nan, dtype=np.float32)
        for i, value in enumerate(values):
            row = self.first_row + i
            if value is None or value == "" or value == []:
                out[i] = np.nan
                continue
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    self.problems.append(Problem(row, column, "not a list of numbers"))
                    continue
            if not isinstance(value, list | tuple):
                self.problems.append(Problem(row, column, "not a list of numbers"))
                continue
            if len(value) != width:
                self.problems.append(
                    Problem(row, column, f"has {len(value)} values where earlier rows have {width}")
                )
                continue
            try:
                out[i] = np.asarray(
                    [float(x) if x not in (None, "") else np.nan for x in value], dtype=np.float32
                )
            except (TypeError, ValueError):
                self.problems.append(Problem(row, column, "not a list of numbers"))
        return out

    def build(self) -> Batch:
        lay = self.layout
        rows = self.rows
        emb_name = lay.embedding if isinstance(lay.embedding, str) else "emb_*"
        prob_name = lay.probs if isinstance(lay.probs, str) else "prob_*"
        return Batch(
            first_row=self.first_row,
            ids=[r.get("id") for r in rows],
            splits=[r.get("split") for r in rows],
            labels=[r.get("label") for r in rows],
            texts=[r.get("text") for r in rows],
            images=[r.get("image") for r in rows],
            features=[{c: r.get(c) for c in lay.features} if lay.features else None for r in rows],
            metadata=[_metadata(r, lay) for r in rows],
            embeddings=self._matrix(self.emb, emb_name) if lay.embedding else None,
            probs=self._matrix(self.probs, prob_name) if lay.probs else None,
            problems=self.problems,
            prob_classes=lay.prob_classes,
            emb_column=emb_name,
            prob_column=prob_name,
            meta_columns=lay.meta,
            original=lay.original,
        )


def _metadata(row: dict, layout: Layout) -> Any:
    meta = _parse_metadata(row.get("metadata"))
    if isinstance(meta, dict):
        for key, column in layout.meta.items():
            if row.get(column) is not None:
                meta[key] = row[column]
    return meta


def _parse_metadata(meta: Any) -> Any:
    """A `metadata` cell (a JSON object, or its text) as a dict, or a _BadValue saying why not."""
    if isinstance(meta, str) and meta:
        try:
            meta = json.loads(meta)
        except RecursionError:
            return _BadValue(f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep")
        except ValueError:
            return _BadValue("metadata is not valid JSON")
    if meta in (None, ""):
        return {}
    if not isinstance(meta, dict):
        return _BadValue("metadata must be a JSON object")
    return dict(meta)


class _BadValue:
    """A cell that could not be read; validation turns it into a problem."""

    def __init__(self, message: str, column: str = "metadata"):
        self.message = message
        self.column = column


# A CSV's delimiter is the header's: a comma when it has one, else the most frequent of these
# (spreadsheets in many locales save with semicolons, and write 0,5 for a half).
CSV_DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 64 * 1024
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")


def csv_format(head: bytes) -> tuple[str, str]:
    """The encoding and the delimiter of a CSV file, from its first bytes: UTF-8 (with or
    without a byte-order mark) when they decode as such, UTF-16 by its mark, else Windows-1252,
    what spreadsheets in Western locales save (Latin-1 when a byte is not Windows-1252). Guessing
    among more encodings from a few lines is unreliable; a file in another one is to be saved as
    UTF-8."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        try:
            head.decode("utf-8")
            encoding = "utf-8-sig"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3 and len(head) >= SNIFF_BYTES:
                encoding = "utf-8-sig"  # a character cut at the end of the sample
            else:
                try:
                    head.decode("cp1252")
                    encoding = "cp1252"
                except UnicodeDecodeError:
                    encoding = "latin-1"
    header = head.decode(encoding, errors="ignore").lstrip("\ufeff").splitlines()[:1]
    line = header[0] if header else ""
    counts = {d: line.count(d) for d in CSV_DELIMITERS}
    delimiter = "," if counts[","] else max(CSV_DELIMITERS, key=lambda d: counts[d])
    return encoding, delimiter if counts[delimiter] else ","


def _csv_batches(stream: IO[bytes], layout_for, batch_rows: int) -> Iterator[Batch]:
    start = stream.tell() if stream.seekable() else None
    if start is None:  # read ahead without consuming: a buffer that can peek
        stream = io.BufferedReader(stream, buffer_size=SNIFF_BYTES)  # type: ignore[arg-type]
        head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    else:
        head = stream.read(SNIFF_BYTES)
        stream.seek(start)
    encoding, delimiter = csv_format(head)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        yield from _csv_rows(text, layout_for, batch_rows, delimiter=delimiter)
    finally:
        text.detach()  # the caller owns the stream: don't close it with the wrapper


def _csv_rows(
    text: IO[str], layout_for, batch_rows: int, *, delimiter: str = ","
) -> Iterator[Batch]:
    reader = csv.reader(text, strict=True, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRefused("The file is empty.") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise FileRefused(f"The header cannot be read: {exc}") from None
    header = [h.lstrip("\ufeff").strip() for h in header]
    layout = layout_for(header)
    numeric = set(layout.features) | set(layout.meta.values())
    # With semicolons between the fields, a comma in a number is its decimal point.
    decimal_comma = delimiter == ";"
    vectors = set(layout.embedding if isinstance(layout.embedding, list) else [])
    vectors |= set(layout.probs.values() if isinstance(layout.probs, dict) else [])
    width = len(header)
    builder = _RowBuilder(layout, 1)
    row_no = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            row_no += 1
            builder.problems.append(Problem(row_no, "-", f"malformed CSV: {exc}"))
            break  # the reader cannot recover its position after a csv.Error
        except UnicodeDecodeError:
            builder.problems.append(Problem(row_no + 1, "-", "the file is not UTF-8 text"))
            break
        row_no += 1
        if len(cells) != width:
            builder.problems.append(
                Problem(row_no, "-", f"has {len(cells)} fields; the header has {width}")
            )
            cells = (cells + [""] * width)[:width]
        row = {}
        for name, cell in zip(layout.names, cells, strict=True):
            if name is None:  # mapped to be left out
                continue
            if decimal_comma and (name in numeric or name in vectors):
                cell = cell.replace(",", ".") if _DECIMAL_COMMA.fullmatch(cell) else cell
            if name in numeric:
                row[name] = _parse_scalar(cell)
            else:
                row[name] = cell if cell != "" else None
        builder.add(row)
        if len(builder.rows) >= batch_rows:
            yield builder.build()
            builder = _RowBuilder(layout, row_no + 1)
    if builder.rows or builder.problems:
        yield builder.build()


def _jsonl_batches(stream: IO[bytes], layout_for, batch_rows: int) -> Iterator[Batch]:
    layout = None
    builder = None
    header: list[str] = []
    renamed: dict[str, str] = {}
    row_no = 0
    for raw in stream:
        line = raw.strip()
        if not line:
            continue
        row_no += 1
        try:
            row = json.loads(line)
        except RecursionError:
            column = _deep_column(line)
            row = {}
            problem = Problem(row_no, column, f"nested more than {MAX_METADATA_DEPTH} levels deep")
        except (ValueError, UnicodeDecodeError) as exc:
            row, problem = {}, Problem(row_no, "-", f"not valid JSON: {exc}")
        else:
            problem = (
                None
                if isinstance(row, dict)
                else Problem(row_no, "-", "each line must be a JSON object")
            )
        if layout is None:
            if problem:
                raise FileRefused(
                    f"Row 1 must be a JSON object naming the columns ({problem.message})."
                )
            header = list(row)
            layout = layout_for(header)
            renamed = {c: n for c, n in zip(header, layout.names, strict=True) if n is not None}
            builder = _RowBuilder(layout, 1)
        if problem:
            builder.problems.append(problem)
            row = {}
        elif unknown := [k for k in row if k not in header]:
            builder.problems.append(Problem(row_no, unknown[0], "column not in the first row"))
        if layout.original:  # read under the names the columns are mapped to
            row = {renamed[k]: v for k, v in row.items() if k in renamed}
        builder.add(row)
        if len(builder.rows) >= batch_rows:
            yield builder.build()
            builder = _RowBuilder(layout, row_no + 1)
    if layout is None:
        raise FileRefused("The file is empty.")
    if builder.rows or builder.problems:
        yield builder.build()


def _deep_column(line: bytes) -> str:
    """The top-level key of a JSON line whose value is nested too deeply for the parser, which
    gives up without saying where; '-' when none can be told."""
    text = line.decode("utf-8", "replace")
    depth, key, last, start = 0, "-", None, 0
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string, last = False, text[start:i]
        elif ch == '"':
            in_string, start = True, i + 1
        elif ch == ":" and depth == 1 and last is not None:
            try:
                key = json.loads(f'"{last}"')
            except ValueError:
                key = last
        elif ch in "[{":
            depth += 1
            if depth > MAX_METADATA_DEPTH + 1:
                return key
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 1:
            last = None
    return key


def _arrow_matrix(column, name: str, first_row: int, problems: list[Problem]) -> np.ndarray:
    """A list<float> Arrow column as an (n, d) float32 matrix; bad rows become NaN and problems."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_fixed_size_list(column.type):
        width = column.type.list_size
        values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        out = values.reshape(len(column), width).copy()
        if column.null_count:
            out[np.asarray(column.is_null())] = np.nan
        return out
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        problems.append(Problem(first_row, name, "must be a list of numbers"))
        return np.full((len(column), 1), np.nan, dtype=np.float32)
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    valid = ~np.asarray(column.is_null())
    widths = lengths[valid & (lengths > 0)]
    width = int(widths[0]) if len(widths) else 1
    out = np.full((len(column), width), np.nan, dtype=np.float32)
    good = valid & (lengths == width)
    for i in np.flatnonzero(valid & (lengths != width) & (lengths > 0))[:100]:
        problems.append(
            Problem(
                first_row + int(i), name, f"has {lengths[i]} values where earlier rows have {width}"
            )
        )
    if good.any():
        flat = pc.list_flatten(column.filter(pa.array(good))).to_numpy(zero_copy_only=False)
        out[good] = flat.astype(np.float32, copy=False).reshape(-1, width)
    return out


def _parquet_batches(stream: IO[bytes], layout_for, batch_rows: int) -> Iterator[Batch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer would hold far more of the file in memory than the batch being read.
        parquet = pq.ParquetFile(stream, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileRefused(f"Not a readable Parquet file: {exc}") from None
    header = parquet.schema_arrow.names
    layout = layout_for(header)
    kept = [i for i, name in enumerate(layout.names) if name is not None]
    first_row = 1
    for record_batch in parquet.iter_batches(batch_size=batch_rows):
        if layout.original or len(kept) != len(header):  # read under the mapped names
            record_batch = record_batch.select(kept).rename_columns(layout.columns)
        n = record_batch.num_rows
        problems: list[Problem] = []

        def scalars(name: str, n=n, record_batch=record_batch) -> list:
            if name not in layout.columns:
                return [None] * n
            values = record_batch.column(name).to_pylist()
            return [None if v == "" else v for v in values] if name != "text" else values

        meta_cols = {k: scalars(c) for k, c in layout.meta.items()}
        metadata_col = scalars("metadata")
        metadata = []
        for i in range(n):
            meta = _parse_metadata(metadata_col[i])
            if isinstance(meta, dict):
                for key, values in meta_cols.items():
                    if values[i] is not None:
                        meta[key] = values[i]
            metadata.append(meta)
        feature_cols = {c: scalars(c) for c in layout.features}
        features = (
            [{c: feature_cols[c][i] for c in layout.features} for i in range(n)]
            if layout.features
            else [None] * n
        )
        if isinstance(layout.embedding, list):
            emb = np.column_stack(
                [record_batch.column(c).to_numpy(zero_copy_only=False) for c in layout.embedding]
            ).astype(np.float32)
        elif layout.embedding:
            emb = _arrow_matrix(record_batch.column("embedding"), "embedding", first_row, problems)
        else:
            emb = None
        if isinstance(layout.probs, dict):
            probs = np.column_stack(
                [
                    record_batch.column(c).to_numpy(zero_copy_only=False)
                    for c in layout.probs.values()
                ]
            ).astype(np.float32)
        elif layout.probs:
            probs = _arrow_matrix(record_batch.column("probs"), "probs", first_row, problems)
        else:
            probs = None
        yield Batch(
            first_row=first_row,
            ids=scalars("id"),
            splits=scalars("split"),
            labels=scalars("label"),
            texts=scalars("text"),
            images=scalars("image"),
            features=features,
            metadata=metadata,
            embeddings=emb,
            probs=probs,
            problems=problems,
            prob_classes=layout.prob_classes,
            emb_column="emb_*" if isinstance(layout.embedding, list) else "embedding",
            prob_column="prob_*" if isinstance(layout.probs, dict) else "probs",
            meta_columns=layout.meta,
            original=layout.original,
        )
        first_row += n


def read_batches(
    stream: IO[bytes],
    fmt: str,
    *,
    tabular: bool,
    batch_rows: int = BATCH_ROWS,
    columns: dict[str, str] | None = None,
    generate_ids: bool = False,
) -> Iterator[Batch]:
    """Batches of the file in `stream` (opened in binary mode, positioned at the start).
    `columns` maps some of the file's columns to their roles; the others go by their names.
    With `generate_ids` the file has no id column: the importer makes the ids."""

    def layout_for(header: list[str]) -> Layout:
        return layout_from_header(
            header, tabular=tabular, mapping=columns, generate_ids=generate_ids
        )

    if fmt == "csv":
        return _csv_batches(stream, layout_for, batch_rows)
    if fmt == "jsonl":
        return _jsonl_batches(stream, layout_for, batch_rows)
    if fmt == "parquet":
        return _parquet_batches(stream, layout_for, batch_rows)
    raise FileRefused(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")


def guess_format(file_name: str) -> str:
    name = file_name.lower()
    if name.endswith((".zip", ".tar", ".tar.gz", ".tgz")):
        return "archive"
    for suffix, fmt in (
        (".csv", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ):
        if name.endswith(suffix):
            return fmt
    raise FileRefused(
        f"Cannot tell the format of {file_name!r} from its name; give the format (csv, jsonl or parquet)."
    )


def peek_columns(path: str, fmt: str) -> list[str]:
    """The column names of a file, read from its header alone."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_schema(path).names
        except Exception as exc:  # noqa: BLE001 - any failure means unreadable
            raise FileRefused(f"Not a readable Parquet file: {exc}") from None
    with open(path, "rb") as f:
        first = f.readline() if fmt != "csv" else f.read(SNIFF_BYTES)
    try:
        if fmt == "csv":
            encoding, delimiter = csv_format(first)
            line = first.decode(encoding, errors="ignore").lstrip("\ufeff").splitlines()[:1]
            return next(csv.reader(line, delimiter=delimiter)) if line else []
        row = json.loads(first)
        return list(row) if isinstance(row, dict) else []
    except (ValueError, StopIteration):
        return []


def guess_modality(columns: list[str]) -> str:
    if "text" in columns:
        return "text"
    if "image" in columns:
        return "image"
    return "tabular"
