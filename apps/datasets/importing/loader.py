"""Load a file into a dataset, all or nothing.

One PostgreSQL transaction on its own connection: rows are checked batch by batch as they
stream in and copied (binary COPY) into a temporary staging table; checks that need the whole
file (duplicate ids, ids already in the dataset) run in SQL at the end. Any problem rolls the
whole transaction back, so the dataset is exactly as before. Progress is reported through a
callback, which writes on Django's connection, outside this transaction.
"""

from __future__ import annotations

import datetime as dt
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from queue import Queue
from typing import IO

import numpy as np
import psycopg
from django.db import connection
from psycopg.types.json import Jsonb

from apps import annotations as task_types
from apps.core.text import text_problem
from apps.datasets.importing.mapping import content_id, content_key
from apps.datasets.importing.readers import (
    Batch,
    ColumnRefused,
    FileRefused,
    Problem,
    _BadValue,
    read_batches,
)
from apps.datasets.importing.values import (
    MAX_VECTOR_DIMENSIONS,
    id_problem,
    image_path,
    json_problem,
)
from apps.datasets.models import Dataset, Modality, Split

MAX_PROBLEMS = 100
PROB_TOLERANCE = 1e-2  # probabilities must sum to 1 within this
SPLITS = set(Split.values)


class ImportRefused(Exception):
    """The file was refused; nothing was written. Carries the problems found."""

    def __init__(self, problems: list[dict], count: int):
        self.problems = problems
        self.count = count
        first = problems[0] if problems else {}
        where = f"row {first['row']}, " if first.get("row") else ""
        super().__init__(
            f"Import refused: {count} problem{'s' if count != 1 else ''}; first: "
            f"{where}column {first.get('column')!r}: {first.get('message')}"
        )


@dataclass
class ImportOptions:
    on_duplicate: str = "reject"  # or "upsert"
    extend_labels: bool = False
    embedding_space: str = "default"
    model_run: str = ""  # name of the model run made from a probabilities column
    file_name: str = ""
    images: frozenset[str] | None = None  # for an archive: the image entries it holds
    image_prefix: str = ""  # where in the dataset's media those entries were put
    columns: dict[str, str] | None = None  # the file's columns mapped to roles; others by name
    generate_ids: bool = False  # the file has no ids: make them from each sample's content


@dataclass
class ImportResult:
    imported: int = 0  # new samples
    updated: int = 0  # existing samples changed by an upsert
    rows: int = 0
    version: int | None = None
    embedding_space_id: int | None = None
    model_run_id: int | None = None
    labels_added: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


class _Problems:
    def __init__(self):
        self.items: list[dict] = []
        self.count = 0
        self.original: dict[str, str] = {}  # a mapped column's name in the file, by role name

    def add(self, row: int | None, column: str, message: str, *, as_in_file: bool = False) -> None:
        self.count += 1
        if len(self.items) < MAX_PROBLEMS:
            column = column if as_in_file else self.original.get(column, column)
            self.items.append(Problem(row, column, message).as_dict())

    def extend(self, problems: list[Problem]) -> None:
        for p in problems:
            self.add(p.row, p.column, p.message)


def raw_connection() -> psycopg.Connection:
    """A psycopg connection of our own to the Django database, with pgvector types."""
    from pgvector.psycopg import register_vector

    connection.ensure_connection()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("server_side_binding", None)
    conn = psycopg.connect(**params, autocommit=False)
    register_vector(conn)
    return conn


STAGE_COLUMNS = [
    ("row_no", "int4"),
    ("sample_id", "int8"),
    ("external_id", "text"),
    ("split", "text"),
    ("label", "text"),
    ("text", "text"),
    ("image", "text"),
    ("fields", "jsonb"),
    ("metadata", "jsonb"),
]

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)


def binary_copy_data(columns: list[tuple[str, np.ndarray]]) -> bytes:
    """Rows for COPY ... (FORMAT BINARY), built by NumPy in one go rather than row by row.

    `columns` pairs a type ("int2", "int8" or "vector") with its values: a 1-d array, or for
    a vector a 2-d float32 array (pgvector's binary form: int16 dim, int16 0, float32 values).
    """
    n = len(columns[0][1])
    fields = [("count", ">i2")]
    for i, (kind, values) in enumerate(columns):
        if kind == "vector":
            fields += [
                (f"len{i}", ">i4"),
                (f"dim{i}", ">i2"),
                (f"pad{i}", ">i2"),
                (f"v{i}", ">f4", (values.shape[1],)),
            ]
        else:
            fields += [(f"len{i}", ">i4"), (f"v{i}", {"int2": ">i2", "int8": ">i8"}[kind])]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["count"] = len(columns)
    for i, (kind, values) in enumerate(columns):
        if kind == "vector":
            rows[f"len{i}"] = 4 + 4 * values.shape[1]
            rows[f"dim{i}"] = values.shape[1]
            rows[f"pad{i}"] = 0
        else:
            rows[f"len{i}"] = {"int2": 2, "int8": 8}[kind]
        rows[f"v{i}"] = values
    return rows.tobytes()


def copy_binary(conn, table: str, column_names: list[str], data: bytes) -> None:
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(column_names)}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(_COPY_HEADER + data + _COPY_TRAILER)


class _Validator:
    def __init__(
        self, dataset: Dataset, options: ImportOptions, problems: _Problems, emb_dim: int | None
    ):
        self.dataset = dataset
        self.options = options
        self.problems = problems
        self.schema = list(dataset.labels)
        self.class_name_problem = task_types.of(dataset).values.check_class_name
        self.known = set(self.schema)
        self.free_schema = not self.schema  # a new dataset takes its labels from the file
        self.new_labels: list[str] = []
        self.emb_dim = emb_dim
        self.prob_width: int | None = None
        self.prob_classes: list[str] | None = None  # named by prob_<class> columns
        self.prob_order: list[int] | None = None  # reorders those columns to the schema's order

    def name_prob_columns(self, classes: list[str]) -> None:
        """prob_<class> columns: every class needs one, in any order; unknown classes are labels."""
        self.prob_classes = classes
        if self.free_schema:
            self.known = set(classes)
            self.free_schema = False  # the columns define the schema, in their order
            self.schema, self.new_labels = [], list(classes)
            return
        for cls in classes:
            if cls not in self.known:
                if not self.options.extend_labels:
                    self.problems.add(
                        None,
                        f"prob_{cls}",
                        f"class {cls!r} is not in the label schema (allow new labels with --extend-labels)",
                    )
                    continue
                self.known.add(cls)
                self.new_labels.append(cls)
        final = self.schema + self.new_labels
        missing = [c for c in final if c not in classes]
        for cls in missing:
            self.problems.add(None, "prob_*", f"no prob_{cls} column for class {cls!r}")
        if not missing:
            self.prob_order = [classes.index(c) for c in final if c in classes]

    def image_of(self, image: str, row: int) -> str:
        """The row's image path in normal form, inside the dataset's media (or '' when refused)."""
        if not image.strip():
            return ""
        try:
            path = image_path(image)
        except ValueError as exc:
            self.problems.add(row, "image", f"{image!r}: {exc}")
            return ""
        if self.options.images is not None:
            if path not in self.options.images:
                self.problems.add(row, "image", f"{image!r} is not an image in the archive")
            path = self.options.image_prefix + path
        return path

    def metadata_of(self, meta, row: int, meta_columns: dict[str, str]) -> dict:
        """The row's metadata, or {} with a problem naming the column it came from."""
        if isinstance(meta, _BadValue):
            self.problems.add(row, meta.column, meta.message)
            return {}
        if meta and (problem := json_problem(meta)):
            column = "metadata"
            for key, value in meta.items():  # a meta_<key> column is named by itself
                if key in meta_columns and (own := json_problem(value, depth=2)):
                    column, problem = meta_columns[key], own
                    break
            self.problems.add(row, column, problem)
            return {}
        return meta

    def label_of(self, value, row: int) -> str | None:
        if value is None:
            return None
        label = str(value).strip()
        if not label:
            return None
        if problem := self.class_name_problem(label):
            self.problems.add(row, "label", problem)
            return None
        if label not in self.known:
            if self.prob_classes is not None and label not in self.prob_classes:
                self.problems.add(row, "label", f"label {label!r} has no prob_{label} column")
                return label
            if not (self.free_schema or self.options.extend_labels):
                self.problems.add(
                    row,
                    "label",
                    f"unknown label {label!r}; the schema has {', '.join(self.schema)} "
                    "(allow new labels with --extend-labels to add it)",
                )
                return label
            self.known.add(label)
            self.new_labels.append(label)
        return label

    def check_matrix(
        self, matrix: np.ndarray, batch: Batch, column: str, *, probs: bool
    ) -> np.ndarray:
        """Rows of `matrix` that may be written (finite, right width; probabilities sum to 1)."""
        n = len(batch)
        width = matrix.shape[1]
        if width > MAX_VECTOR_DIMENSIONS:
            self.problems.add(
                batch.first_row,
                column,
                f"has {width:,} values; a vector holds at most {MAX_VECTOR_DIMENSIONS:,}",
            )
            return np.zeros(n, dtype=bool)
        expected = self.prob_width if probs else self.emb_dim
        if expected is None:
            expected = width
            if probs:
                self.prob_width = width
            else:
                self.emb_dim = width
        ok = np.ones(n, dtype=bool)
        if width != expected:
            if probs:
                message = f"has {width} probabilities where earlier rows have {expected}"
            else:
                message = f"has {width} values; the embedding space {self.options.embedding_space!r} has {expected}"
            for i in range(min(n, MAX_PROBLEMS)):
                self.problems.add(batch.first_row + i, column, message)
            self.problems.count += max(0, n - MAX_PROBLEMS)
            return np.zeros(n, dtype=bool)
        finite = np.isfinite(matrix).all(axis=1)
        for i in np.flatnonzero(~finite):
            self.problems.add(
                batch.first_row + int(i), column, "missing, or has NaN or infinite values"
            )
        ok &= finite
        if probs:
            sums = matrix.sum(axis=1, dtype=np.float64)
            in_range = ((matrix >= -1e-6) & (matrix <= 1 + 1e-6)).all(axis=1)
            bad_sum = finite & (np.abs(sums - 1.0) > PROB_TOLERANCE)
            for i in np.flatnonzero(finite & ~in_range):
                self.problems.add(
                    batch.first_row + int(i), column, "probabilities must lie between 0 and 1"
                )
            for i in np.flatnonzero(bad_sum & in_range):
                self.problems.add(
                    batch.first_row + int(i), column, f"probabilities sum to {sums[i]:.4f}, not 1"
                )
            ok &= in_range & ~bad_sum
        return ok

    def rows(self, batch: Batch):
        """The batch's rows as staging tuples (problems are recorded; rows with them still go),
        and which rows' embeddings and probabilities may be written."""
        if batch.original and not self.problems.original:
            self.problems.original.update(batch.original)
        self.problems.extend(batch.problems)
        if batch.prob_classes is not None and self.prob_classes is None:
            self.name_prob_columns(batch.prob_classes)
        if batch.probs is not None and self.prob_order is not None:
            batch.probs = batch.probs[:, self.prob_order]
        emb_ok = (
            self.check_matrix(batch.embeddings, batch, batch.emb_column, probs=False)
            if batch.embeddings is not None
            else None
        )
        prob_ok = (
            self.check_matrix(batch.probs, batch, batch.prob_column, probs=True)
            if batch.probs is not None
            else None
        )
        modality = self.dataset.modality
        add = self.problems.add
        generate = self.options.generate_ids
        prefix = self.options.image_prefix
        rows = []
        for i in range(len(batch)):
            row = batch.first_row + i
            ext = "" if generate else external_id(batch.ids[i], row, add)
            split = _text(batch.splits[i], row, "split", add).strip() or "train"
            if split not in SPLITS:
                add(row, "split", f"unknown split {split!r}; use one of {', '.join(Split.values)}")
            label = self.label_of(batch.labels[i], row)
            text = _text(batch.texts[i], row, "text", add)
            if modality == Modality.TEXT and not text.strip():
                add(row, "text", "empty text in a text dataset")
            image = self.image_of(_text(batch.images[i], row, "image", add), row)
            if modality == Modality.IMAGE and not image:
                add(row, "image", "no image path in an image dataset")
            meta = self.metadata_of(batch.metadata[i], row, batch.meta_columns)
            features = batch.features[i]
            if features is not None:
                for column, value in features.items():
                    if problem := json_problem(value, depth=2):
                        add(row, column, problem)
                        features[column] = None
                features = {k: _json_safe(v) for k, v in features.items()}
            if generate:  # the path as in the file, not where this import puts the image
                path = image[len(prefix) :] if prefix and image.startswith(prefix) else image
                key = content_key(modality=modality, text=text, image=path, features=features)
                ext = content_id(key)
            rows.append(
                (
                    row,
                    ext,
                    split,
                    label,
                    text,
                    image,
                    Jsonb(features) if features is not None else None,
                    Jsonb(_json_safe(meta)) if meta else _EMPTY_JSON,
                )
            )
        return rows, emb_ok, prob_ok


_EMPTY_JSON = Jsonb({})


def external_id(value, row: int, add) -> str:
    """A row's id as stored, or '' after reporting why it cannot be (one rule for every import)."""
    ext = "" if value is None else str(value).strip()
    if not ext:
        add(row, "id", "missing id")
    elif problem := id_problem(ext):
        add(row, "id", problem)
        ext = ""
    return ext


def _text(value, row: int, column: str, add) -> str:
    """A text cell as stored, or '' after reporting why PostgreSQL could not hold it."""
    text = "" if value is None else str(value)
    if problem := text_problem(text):
        add(row, column, f"the {column} {problem}")
        return ""
    return text


def _json_safe(value):
    """JSON cannot hold NaN or infinity: a missing number is null. Dates and times (Parquet's
    timestamp columns) become ISO 8601 text, decimals numbers."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def import_samples(
    *,
    dataset: Dataset,
    stream: IO[bytes],
    fmt: str,
    by,
    options: ImportOptions,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import the file into `dataset` as a new version, or raise ImportRefused and change nothing."""
    started = time.monotonic()
    problems = _Problems()
    space = dataset.embedding_spaces.filter(name=options.embedding_space).first()
    validator = _Validator(dataset, options, problems, space.dimension if space else None)
    if options.generate_ids:
        problems.original["id"] = "id (generated)"
    result = ImportResult()
    with raw_connection() as conn:
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")
            columns = ", ".join(f"{name} {kind}" for name, kind in STAGE_COLUMNS)
            conn.execute(f"CREATE TEMP TABLE import_stage ({columns}) ON COMMIT DROP")
            vectors = _VectorWriter(conn, dataset, options, by)
            try:
                checked = _read_ahead(
                    validator,
                    read_batches(
                        stream,
                        fmt,
                        tabular=dataset.modality == Modality.TABULAR,
                        columns=options.columns,
                        generate_ids=options.generate_ids,
                    ),
                )
                for batch, rows, emb_ok, prob_ok, refused in checked:
                    ids = (
                        np.zeros(len(rows), dtype=np.int64)
                        if refused
                        else _allocate_sample_ids(conn, len(rows))
                    )
                    with (
                        conn.cursor() as cur,
                        cur.copy("COPY import_stage FROM STDIN (FORMAT BINARY)") as copy,
                    ):
                        copy.set_types([kind for _, kind in STAGE_COLUMNS])
                        for row, sample_id in zip(rows, ids.tolist(), strict=True):
                            copy.write_row((row[0], sample_id, *row[1:]))
                    if emb_ok is not None and not refused:
                        vectors.embeddings(ids[emb_ok], batch.embeddings[emb_ok], validator.emb_dim)
                    if prob_ok is not None and not refused:
                        vectors.probs(ids[prob_ok], batch.probs[prob_ok])
                    result.rows += len(batch)
                    if progress:
                        progress(result.rows)
            except ColumnRefused as exc:
                problems.add(None, exc.column, exc.message, as_in_file=True)
            except FileRefused as exc:
                problems.add(None, "-", str(exc))
            else:
                if result.rows == 0 and not problems.count:
                    problems.add(None, "-", "the file has no rows")
                if options.generate_ids:
                    _number_repeated_content(conn)
                _whole_file_checks(conn, dataset, options, validator, problems)
            result.timings["read_and_stage"] = round(time.monotonic() - started, 3)
            if problems.count:  # raising out of the transaction block rolls it back
                problems.items.sort(key=lambda p: p["row"] or 0)
                raise ImportRefused(problems.items, problems.count)
            _apply(conn, dataset, by, options, validator, vectors, result)
            result.timings["write"] = round(
                time.monotonic() - started - result.timings["read_and_stage"], 3
            )
        result.timings["commit"] = round(
            time.monotonic() - started - sum(result.timings.values()), 3
        )
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _read_ahead(validator: _Validator, batches):
    """Read and check the next batch in a thread while this one is written: the database works
    on one core while Python parses on the other."""
    queue: Queue = Queue(maxsize=2)
    done = object()

    def produce() -> None:
        try:
            for batch in batches:
                rows, emb_ok, prob_ok = validator.rows(batch)
                # Once refused, only ids are staged (to report duplicates too); vectors are skipped.
                queue.put((batch, rows, emb_ok, prob_ok, validator.problems.count > 0))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            queue.put(exc)
        else:
            queue.put(done)

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    while (item := queue.get()) is not done:
        if isinstance(item, BaseException):
            thread.join()
            raise item
        yield item
    thread.join()


def _allocate_sample_ids(conn, n: int) -> np.ndarray:
    ids = conn.execute(
        "SELECT array_agg(nextval('datasets_sample_id_seq')) FROM generate_series(1, %s)", [n]
    ).fetchone()[0]
    return np.asarray(ids or [], dtype=np.int64)


class _VectorWriter:
    """Copies embeddings and probabilities straight into their tables, keyed by the sample ids
    allocated for the staged rows; the space and model run rows are made on first use."""

    def __init__(self, conn, dataset: Dataset, options: ImportOptions, by):
        from django.utils import timezone

        self.conn, self.dataset, self.options, self.by = conn, dataset, options, by
        self.now = timezone.now()
        self.space_id: int | None = None
        self.run_id: int | None = None

    def embeddings(self, ids: np.ndarray, matrix: np.ndarray, dim: int) -> None:
        if self.space_id is None:
            self.space_id = self.conn.execute(
                """INSERT INTO datasets_embeddingspace (dataset_id, name, dimension, method, created_at)
                   VALUES (%s, %s, %s, 'provided', %s)
                   ON CONFLICT (dataset_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id""",
                [self.dataset.pk, self.options.embedding_space, dim, self.now],
            ).fetchone()[0]
        if len(ids):
            data = binary_copy_data(
                [("int8", np.full(len(ids), self.space_id)), ("int8", ids), ("vector", matrix)]
            )
            copy_binary(self.conn, "datasets_embedding", ["space_id", "sample_id", "vector"], data)

    def probs(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        if self.run_id is None:
            name = (
                self.options.model_run or f"probabilities from {self.options.file_name or 'import'}"
            )
            self.run_id = self.conn.execute(
                """INSERT INTO datasets_modelrun (dataset_id, name, classes, epochs, metrics, created_by_id, created_at)
                   VALUES (%s, %s, '{}', 0, '{}', %s, %s) RETURNING id""",
                [self.dataset.pk, name, getattr(self.by, "pk", None), self.now],
            ).fetchone()[0]
        if len(ids):
            data = binary_copy_data(
                [
                    ("int8", np.full(len(ids), self.run_id)),
                    ("int8", ids),
                    ("int2", np.zeros(len(ids), dtype=np.int16)),
                    ("vector", matrix),
                ]
            )
            copy_binary(
                self.conn, "datasets_prediction", ["run_id", "sample_id", "epoch", "probs"], data
            )


def _number_repeated_content(conn) -> None:
    """Generated ids of content repeated in the file: -2, -3, ... after the first, by row."""
    conn.execute(
        """UPDATE import_stage s SET external_id = s.external_id || '-' || d.n
           FROM (SELECT row_no, row_number() OVER (PARTITION BY external_id ORDER BY row_no) AS n
                 FROM import_stage) d
           WHERE d.row_no = s.row_no AND d.n > 1"""
    )


def _whole_file_checks(
    conn, dataset: Dataset, options: ImportOptions, validator: _Validator, problems: _Problems
):
    dupes = conn.execute(
        """SELECT external_id, array_agg(row_no ORDER BY row_no) FROM import_stage
           GROUP BY external_id HAVING count(*) > 1 ORDER BY min(row_no)"""
    ).fetchall()
    for ext, rows in dupes:
        for row in rows[1:]:
            problems.add(row, "id", f"duplicate id {ext!r} (first on row {rows[0]})")
    if options.on_duplicate == "reject":
        existing = conn.execute(
            """SELECT r.row_no, r.external_id FROM import_stage r
               JOIN datasets_sample s ON s.dataset_id = %s AND s.external_id = r.external_id
               ORDER BY r.row_no""",
            [dataset.pk],
        ).fetchall()
        for row, ext in existing:
            problems.add(
                row,
                "id",
                f"id {ext!r} is already in the dataset (use --on-duplicate upsert to update it)",
            )
    if validator.prob_width is not None and validator.prob_classes is None:
        classes = _final_schema(validator)
        if validator.prob_width != len(classes):
            problems.add(
                None,
                "probs",
                f"probabilities have {validator.prob_width} values but the label schema has "
                f"{len(classes)} classes ({', '.join(classes)})",
            )


def _final_schema(validator: _Validator) -> list[str]:
    if not validator.free_schema:
        return validator.schema + validator.new_labels
    return sorted(validator.new_labels)


def _apply(
    conn,
    dataset: Dataset,
    by,
    options: ImportOptions,
    validator: _Validator,
    vectors: _VectorWriter,
    result: ImportResult,
) -> None:
    """Make the staged rows a new version of the dataset (inside the open transaction).

    New samples need no history row: a sample's state before any change is its first label,
    from the version it was added in. Samples an upsert touches get one history row each.
    """
    now = vectors.now
    by_id = getattr(by, "pk", None)
    # One import or commit at a time per dataset: version numbers and the schema stay in order.
    labels_now = conn.execute(
        "SELECT labels FROM datasets_dataset WHERE id = %s FOR UPDATE", [dataset.pk]
    ).fetchone()[0]
    schema = list(labels_now) + [
        label for label in _final_schema(validator) if label not in labels_now
    ]
    result.labels_added = [label for label in schema if label not in labels_now]
    if result.labels_added:
        conn.execute("UPDATE datasets_dataset SET labels = %s WHERE id = %s", [schema, dataset.pk])
    version = conn.execute(
        "SELECT coalesce(max(number), 0) + 1 FROM datasets_datasetversion WHERE dataset_id = %s",
        [dataset.pk],
    ).fetchone()[0]
    reason = f"import of {options.file_name}" if options.file_name else "import"

    existing = 0
    if options.on_duplicate == "upsert":
        conn.execute(
            """CREATE TEMP TABLE import_existing ON COMMIT DROP AS
               SELECT r.sample_id AS staged_id, s.id, s.label AS old_label, s.active AS was_active, r.label
               FROM import_stage r JOIN datasets_sample s ON s.dataset_id = %s AND s.external_id = r.external_id""",
            [dataset.pk],
        )
        existing = conn.execute("SELECT count(*) FROM import_existing").fetchone()[0]
    if existing:
        result.updated = conn.execute(
            """UPDATE datasets_sample s SET split = r.split, label = r.label, text = r.text, image = r.image,
                   fields = r.fields, metadata = r.metadata, active = true
               FROM import_stage r JOIN import_existing e ON e.staged_id = r.sample_id WHERE s.id = e.id"""
        ).rowcount
        conn.execute(
            """INSERT INTO datasets_labelevent (dataset_id, sample_id, version, label, removed, source, by_id,
                                                reason, created_at)
               SELECT %s, e.id, %s, e.label, false, 'import', %s, %s, %s FROM import_existing e
               WHERE e.old_label IS DISTINCT FROM e.label OR NOT e.was_active""",
            [dataset.pk, version, by_id, reason, now],
        )
        # Vectors were copied under the ids allocated for the staged rows; move them to the
        # samples they update, replacing what those had.
        if vectors.space_id is not None:
            conn.execute(
                """DELETE FROM datasets_embedding d USING import_existing e
                   WHERE d.space_id = %s AND d.sample_id = e.id""",
                [vectors.space_id],
            )
            conn.execute(
                """UPDATE datasets_embedding d SET sample_id = e.id FROM import_existing e
                   WHERE d.space_id = %s AND d.sample_id = e.staged_id""",
                [vectors.space_id],
            )
        if vectors.run_id is not None:
            conn.execute(
                """UPDATE datasets_prediction p SET sample_id = e.id FROM import_existing e
                   WHERE p.run_id = %s AND p.sample_id = e.staged_id""",
                [vectors.run_id],
            )
    new_rows = (
        "NOT EXISTS (SELECT 1 FROM import_existing e WHERE e.staged_id = r.sample_id)"
        if existing
        else "true"
    )
    result.imported = conn.execute(
        f"""INSERT INTO datasets_sample (id, dataset_id, external_id, split, label, first_label, added_in, text,
                                         image, fields, metadata, active, created_at)
            SELECT r.sample_id, %(d)s, r.external_id, r.split, r.label, r.label, %(v)s, r.text, r.image, r.fields,
                   r.metadata, true, %(now)s
            FROM import_stage r WHERE {new_rows}""",  # noqa: S608 - fixed fragments; ids follow row order
        {"d": dataset.pk, "v": version, "now": now},
    ).rowcount
    relabelled = (
        conn.execute(
            "SELECT count(*) FROM import_existing WHERE was_active AND old_label IS DISTINCT FROM label"
        ).fetchone()[0]
        if existing
        else 0
    )
    total = conn.execute(
        "SELECT count(*) FROM datasets_sample WHERE dataset_id = %s AND active", [dataset.pk]
    ).fetchone()[0]
    stats = {
        "samples": total,
        "added": result.imported,
        "removed": 0,
        "relabelled": relabelled,
        "updated": result.updated,
    }
    version_id = conn.execute(
        """INSERT INTO datasets_datasetversion (dataset_id, number, message, author_id, created_at, stats)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        [dataset.pk, version, reason.capitalize(), by_id, now, Jsonb(stats)],
    ).fetchone()[0]
    result.version = version
    result.embedding_space_id = vectors.space_id
    if vectors.run_id is not None:
        conn.execute(
            "UPDATE datasets_modelrun SET classes = %s, version_id = %s WHERE id = %s",
            [schema, version_id, vectors.run_id],
        )
        result.model_run_id = vectors.run_id


def import_model_run(
    *,
    dataset: Dataset,
    stream: IO[bytes],
    fmt: str,
    by,
    name: str,
    metrics: dict | None = None,
    embedding_space: str = "",
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Log a model run from a file: `id`, probabilities (`probs` or `prob_<class>`), optionally an
    `epoch` column (0 or absent: the final out-of-sample probabilities; 1…E: per epoch) and
    embeddings. Samples must exist; all or nothing, like a sample import."""
    started = time.monotonic()
    problems = _Problems()
    space_name = embedding_space or "default"
    space = dataset.embedding_spaces.filter(name=space_name).first()
    validator = _Validator(
        dataset,
        ImportOptions(embedding_space=space_name),
        problems,
        space.dimension if space else None,
    )
    validator.free_schema = False
    result = ImportResult()
    if not dataset.labels:
        problems.add(
            None, "-", "the dataset has no label schema yet; import labelled samples first"
        )
    with raw_connection() as conn:
        with conn.transaction():
            conn.execute(
                "CREATE TEMP TABLE run_stage (row_no int8, external_id text, epoch int2) ON COMMIT DROP"
            )
            conn.execute("CREATE TEMP TABLE run_probs (row_no int8, probs vector) ON COMMIT DROP")
            conn.execute(
                "CREATE TEMP TABLE run_vectors (row_no int8, vector vector) ON COMMIT DROP"
            )
            saw_probs = False
            try:
                for batch in read_batches(stream, fmt, tabular=True):
                    problems.extend(batch.problems)
                    if batch.prob_classes is not None and validator.prob_classes is None:
                        validator.name_prob_columns(batch.prob_classes)
                    if batch.probs is not None and validator.prob_order is not None:
                        batch.probs = batch.probs[:, validator.prob_order]
                    rows = np.arange(batch.first_row, batch.first_row + len(batch), dtype=np.int64)
                    stage = []
                    for i, row in enumerate(rows.tolist()):
                        ext = external_id(batch.ids[i], row, problems.add)
                        extra = [k for k in (batch.features[i] or {}) if k != "epoch"]
                        if extra:
                            problems.add(row, extra[0], "unknown column in a model run file")
                        epoch = (batch.features[i] or {}).get("epoch")
                        if epoch is None:
                            epoch = 0
                        elif (
                            not isinstance(epoch, int)
                            or isinstance(epoch, bool)
                            or not 0 <= epoch < 32768
                        ):
                            problems.add(
                                row, "epoch", f"epoch must be a whole number from 0, not {epoch!r}"
                            )
                            epoch = 0
                        stage.append((row, ext, epoch))
                    with (
                        conn.cursor() as cur,
                        cur.copy("COPY run_stage FROM STDIN (FORMAT BINARY)") as copy,
                    ):
                        copy.set_types(["int8", "text", "int2"])
                        for item in stage:
                            copy.write_row(item)
                    if batch.probs is None:
                        problems.add(
                            None, "probs", "a model run needs probabilities (probs or prob_<class>)"
                        )
                        break
                    saw_probs = True
                    ok = validator.check_matrix(batch.probs, batch, batch.prob_column, probs=True)
                    if ok.any():
                        copy_binary(
                            conn,
                            "run_probs",
                            ["row_no", "probs"],
                            binary_copy_data([("int8", rows[ok]), ("vector", batch.probs[ok])]),
                        )
                    if batch.embeddings is not None:
                        ok = validator.check_matrix(
                            batch.embeddings, batch, batch.emb_column, probs=False
                        )
                        if ok.any():
                            copy_binary(
                                conn,
                                "run_vectors",
                                ["row_no", "vector"],
                                binary_copy_data(
                                    [("int8", rows[ok]), ("vector", batch.embeddings[ok])]
                                ),
                            )
                    result.rows += len(batch)
                    if progress:
                        progress(result.rows)
            except FileRefused as exc:
                problems.add(None, "-", str(exc))
            else:
                if result.rows == 0 and not problems.count:
                    problems.add(None, "-", "the file has no rows")
                if (
                    saw_probs
                    and validator.prob_classes is None
                    and validator.prob_width != len(dataset.labels)
                ):
                    problems.add(
                        None,
                        "probs",
                        f"probabilities have {validator.prob_width} values but the label "
                        f"schema has {len(dataset.labels)} classes ({', '.join(dataset.labels)})",
                    )
                for row, ext in conn.execute(
                    """SELECT r.row_no, r.external_id FROM run_stage r
                       WHERE NOT EXISTS (SELECT 1 FROM datasets_sample s
                                         WHERE s.dataset_id = %s AND s.external_id = r.external_id)
                       ORDER BY r.row_no LIMIT 101""",
                    [dataset.pk],
                ).fetchall():
                    problems.add(row, "id", f"no sample with id {ext!r} in the dataset")
                for ext, epoch, rows_ in conn.execute(
                    """SELECT external_id, epoch, array_agg(row_no ORDER BY row_no) FROM run_stage
                       GROUP BY external_id, epoch HAVING count(*) > 1 ORDER BY min(row_no) LIMIT 101"""
                ).fetchall():
                    for row in rows_[1:]:
                        problems.add(row, "id", f"id {ext!r} appears twice for epoch {epoch}")
            result.timings["read_and_stage"] = round(time.monotonic() - started, 3)
            if problems.count:
                problems.items.sort(key=lambda p: p["row"] or 0)
                raise ImportRefused(problems.items, problems.count)
            _apply_model_run(conn, dataset, by, name, metrics or {}, space_name, validator, result)
        result.seconds = round(time.monotonic() - started, 3)
    return result


def _apply_model_run(conn, dataset, by, name, metrics, space_name, validator, result) -> None:
    from django.utils import timezone

    now = timezone.now()
    version = conn.execute(
        "SELECT id, number FROM datasets_datasetversion WHERE dataset_id = %s ORDER BY number DESC LIMIT 1",
        [dataset.pk],
    ).fetchone()
    epochs = conn.execute("SELECT coalesce(max(epoch), 0) FROM run_stage").fetchone()[0]
    run_id = conn.execute(
        """INSERT INTO datasets_modelrun (dataset_id, version_id, name, classes, epochs, metrics, created_by_id,
                                          created_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        [
            dataset.pk,
            version[0] if version else None,
            name,
            list(dataset.labels),
            epochs,
            Jsonb(metrics),
            getattr(by, "pk", None),
            now,
        ],
    ).fetchone()[0]
    conn.execute(
        """INSERT INTO datasets_prediction (run_id, sample_id, epoch, probs)
           SELECT %s, s.id, r.epoch, p.probs FROM run_stage r
           JOIN run_probs p ON p.row_no = r.row_no
           JOIN datasets_sample s ON s.dataset_id = %s AND s.external_id = r.external_id""",
        [run_id, dataset.pk],
    )
    if validator.emb_dim is not None:
        space_id = conn.execute(
            """INSERT INTO datasets_embeddingspace (dataset_id, name, dimension, method, created_at)
               VALUES (%s, %s, %s, 'provided', %s)
               ON CONFLICT (dataset_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id""",
            [dataset.pk, space_name, validator.emb_dim, now],
        ).fetchone()[0]
        conn.execute(
            """INSERT INTO datasets_embedding (space_id, sample_id, vector)
               SELECT DISTINCT ON (s.id) %s, s.id, v.vector FROM run_stage r
               JOIN run_vectors v ON v.row_no = r.row_no
               JOIN datasets_sample s ON s.dataset_id = %s AND s.external_id = r.external_id
               ORDER BY s.id, r.epoch
               ON CONFLICT (space_id, sample_id) DO UPDATE SET vector = EXCLUDED.vector""",
            [space_id, dataset.pk],
        )
        result.embedding_space_id = space_id
    result.model_run_id = run_id
    result.version = version[1] if version else None
