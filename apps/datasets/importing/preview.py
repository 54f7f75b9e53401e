"""The first rows of a file as it will be read, for the user to see and map before importing;
reading only, nothing is written anywhere."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from typing import IO, Any

from apps.datasets.importing.readers import SNIFF_BYTES, FileRefused, csv_format

PREVIEW_ROWS = 20
COUNT_ROWS_UP_TO_BYTES = 20 * 1024 * 1024  # counting the rows of a text file reads it all
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass
class FilePreview:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)  # cells as text, PREVIEW_ROWS at most
    encoding: str = ""
    delimiter: str = ""
    row_count: int | None = None  # None: not counted (a large text file)

    @property
    def delimiter_name(self) -> str:
        return _DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))

    @property
    def encoding_name(self) -> str:
        return {"utf-8-sig": "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252"}.get(
            self.encoding, self.encoding.upper()
        )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def header_of(stream: IO[bytes], fmt: str) -> list[str]:
    """The column names of a file, from its header alone; the stream is left at its start."""
    stream.seek(0)
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:  # Django's uploaded files wrap the file Arrow reads
                return list(pq.ParquetFile(getattr(stream, "file", stream)).schema_arrow.names)
            except (pa.ArrowInvalid, OSError) as exc:
                raise FileRefused(f"Not a readable Parquet file: {exc}") from None
        if fmt == "csv":
            head = stream.read(SNIFF_BYTES)
            encoding, delimiter = csv_format(head)
            text = head.decode(encoding, errors="ignore").lstrip("\ufeff")
            try:
                header = next(csv.reader(io.StringIO(text), delimiter=delimiter))
            except (StopIteration, csv.Error):
                raise FileRefused("The header cannot be read.") from None
            return [h.lstrip("\ufeff").strip() for h in header]
        for line in stream:
            if line.strip():
                try:
                    row = json.loads(line)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise FileRefused(f"Row 1 is not valid JSON: {exc}") from None
                if not isinstance(row, dict):
                    raise FileRefused("Row 1 must be a JSON object naming the columns.")
                return list(row)
        raise FileRefused("The file is empty.")
    finally:
        stream.seek(0)


def preview_file(path: str, fmt: str, *, limit: int = PREVIEW_ROWS) -> FilePreview:
    """The header and first `limit` rows of the file at `path`, with how it is read."""
    size = os.path.getsize(path)
    with open(path, "rb") as stream:
        if fmt == "parquet":
            return _parquet(stream, limit)
        if fmt == "csv":
            return _csv(stream, limit, count=size <= COUNT_ROWS_UP_TO_BYTES)
        if fmt == "jsonl":
            return _jsonl(stream, limit, count=size <= COUNT_ROWS_UP_TO_BYTES)
    raise FileRefused(f"A preview of {fmt!r} files is not available.")


def _parquet(stream, limit: int) -> FilePreview:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream, pre_buffer=False)
        header = list(parquet.schema_arrow.names)
        rows: list[list[str]] = []
        for batch in parquet.iter_batches(batch_size=limit):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            rows = [[_cell(col[i]) for col in columns] for i in range(batch.num_rows)]
            break
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileRefused(f"Not a readable Parquet file: {exc}") from None
    return FilePreview(header=header, rows=rows, row_count=parquet.metadata.num_rows)


def _csv(stream, limit: int, *, count: bool) -> FilePreview:
    encoding, delimiter = csv_format(stream.read(SNIFF_BYTES))
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    reader = csv.reader(text, delimiter=delimiter)
    try:
        header = [h.lstrip("\ufeff").strip() for h in next(reader)]
    except StopIteration:
        raise FileRefused("The file is empty.") from None
    except csv.Error as exc:
        raise FileRefused(f"The header cannot be read: {exc}") from None
    rows: list[list[str]] = []
    n = 0
    try:
        for cells in reader:
            n += 1
            if len(rows) < limit:
                rows.append((cells + [""] * len(header))[: len(header)])
            elif not count:
                break
    except csv.Error:
        count = False  # the import reports where; the preview shows what it could read
    return FilePreview(
        header=header,
        rows=rows,
        encoding=encoding,
        delimiter=delimiter,
        row_count=n if count else None,
    )


def _jsonl(stream, limit: int, *, count: bool) -> FilePreview:
    header: list[str] = []
    records: list[dict] = []
    n = 0
    for line in stream:
        if not line.strip():
            continue
        n += 1
        if len(records) >= limit:
            if not count:
                break
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            record = None
        if not isinstance(record, dict):
            if not header:
                raise FileRefused("Row 1 must be a JSON object naming the columns.")
            record = {}
        if not header:
            header = list(record)
        records.append(record)
    if not header:
        raise FileRefused("The file is empty.")
    rows = [[_cell(r.get(c)) for c in header] for r in records]
    return FilePreview(header=header, rows=rows, encoding="utf-8", row_count=n if count else None)
