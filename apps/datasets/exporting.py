"""Write a dataset version out as CSV, JSONL or Parquet, streaming, in the import conventions.

What an export holds imports again unchanged: id, split, label, content (text, image path or
features), metadata, and optionally the embeddings of one space. CSV cells that a spreadsheet
would run as a formula are prefixed with an apostrophe (apps.core.csv).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import closing
from typing import IO

import numpy as np
from django.db import connection

from apps.audit.services import audit_record
from apps.core.csv import csv_writer
from apps.datasets.importing.loader import raw_connection
from apps.datasets.importing.readers import FORMATS
from apps.datasets.models import Dataset, EmbeddingSpace, Modality

BATCH = 10_000


def _rows(dataset: Dataset, version: int, space: EmbeddingSpace | None) -> Iterator[list[tuple]]:
    """Batches of (external_id, split, label, text, image, fields, metadata, vector) in version order."""
    emb_join = (
        "LEFT JOIN datasets_embedding emb ON emb.space_id = %(space)s AND emb.sample_id = s.id"
        if space
        else ""
    )
    emb_col = "emb.vector" if space else "NULL::vector"
    if version == dataset.versions.order_by("-number").values_list("number", flat=True).first():
        # The newest version is what the samples hold now.
        state_join, label, where = "", "s.label", "s.active"
    else:
        state_join = """LEFT JOIN LATERAL (
            SELECT e.label, e.removed, e.version FROM datasets_labelevent e
            WHERE e.sample_id = s.id AND e.version <= %(version)s
            ORDER BY e.version DESC, e.id DESC LIMIT 1) ev ON true"""
        label = "CASE WHEN ev.version IS NULL THEN s.first_label ELSE ev.label END"
        where = "s.added_in <= %(version)s AND NOT coalesce(ev.removed, false)"
    sql = f"""
        SELECT s.external_id, s.split, {label}, s.text, s.image, s.fields, s.metadata, {emb_col}
        FROM datasets_sample s
        {state_join}
        {emb_join}
        WHERE s.dataset_id = %(dataset)s AND {where}
        ORDER BY s.id"""  # noqa: S608 - only our own fragments are formatted in
    with raw_connection() as conn, conn.transaction():
        with conn.cursor(name="export") as cur:  # server-side: memory stays flat
            cur.itersize = BATCH
            cur.execute(
                sql,
                {"version": version, "dataset": dataset.pk, "space": space.pk if space else None},
            )
            while rows := cur.fetchmany(BATCH):
                yield rows


def export_dataset(
    *,
    dataset: Dataset,
    version: int,
    fmt: str,
    out: IO[bytes],
    space: EmbeddingSpace | None = None,
    by,
) -> int:
    """Write version `version` of the dataset to `out`; returns the number of samples written.

    The export is recorded in the audit log once written, as `by` (None: the command line)."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}")
    connection.close_if_unusable_or_obsolete()
    feature_names = _feature_names(dataset)
    writer = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}[fmt]
    with closing(_rows(dataset, version, space)) as rows:  # closes the connection on an error too
        count = writer(dataset, rows, out, feature_names)
    audit_record(
        actor=by,
        action="dataset.exported",
        project=dataset.project,
        target=f"{dataset.name} v{version}",
        detail={
            "dataset_id": dataset.pk,
            "format": fmt,
            "version": version,
            "rows": count,
            **({"embeddings": space.name} if space else {}),
            **({} if by else {"via": "command"}),
        },
    )
    return count


def _feature_names(dataset: Dataset) -> list[str]:
    if dataset.modality != Modality.TABULAR:
        return []
    first = dataset.samples.exclude(fields=None).values_list("fields", flat=True).first()
    return list(first or {})


def _record(row: tuple, dataset: Dataset, features: list[str]) -> dict:
    ext, split, label, text, image, fields, metadata, vector = row
    record = {"id": ext, "split": split, "label": label}
    if dataset.modality == Modality.TEXT:
        record["text"] = text
    elif dataset.modality == Modality.IMAGE:
        record["image"] = image
    for name in features:
        record[name] = (fields or {}).get(name)
    record["metadata"] = metadata or {}
    if vector is not None:
        record["embedding"] = vector.to_numpy().astype(np.float32).tolist()
    return record


def _write_jsonl(dataset, batches, out, features) -> int:
    count = 0
    for rows in batches:
        lines = [json.dumps(_record(r, dataset, features), ensure_ascii=False) for r in rows]
        out.write(("\n".join(lines) + "\n").encode())
        count += len(rows)
    return count


def _write_csv(dataset, batches, out, features) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv_writer(text)
    count = 0
    header = None
    for rows in batches:
        for row in rows:
            record = _record(row, dataset, features)
            vector = record.pop("embedding", None)
            record["metadata"] = (
                json.dumps(record["metadata"], ensure_ascii=False) if record["metadata"] else ""
            )
            if header is None:
                header = list(record) + [f"emb_{i}" for i in range(len(vector or []))]
                writer.writerow(header)
            # Floats, not their text: a negative component is a number, not a formula.
            writer.writerow([*record.values(), *(float(x) for x in (vector or []))])
            count += 1
    if header is None:
        writer.writerow(
            [
                "id",
                "split",
                "label",
                "text" if dataset.modality == Modality.TEXT else "image",
                "metadata",
            ]
        )
    text.detach()
    return count


def _write_parquet(dataset, batches, out, features) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    count = 0
    try:
        for rows in batches:
            records = [_record(r, dataset, features) for r in rows]
            columns = {key: [r.get(key) for r in records] for key in records[0]}
            columns["metadata"] = [json.dumps(m, ensure_ascii=False) for m in columns["metadata"]]
            arrays = {}
            for key, values in columns.items():
                if key == "embedding":
                    arrays[key] = pa.array(values, type=pa.list_(pa.float32()))
                else:
                    arrays[key] = pa.array(values)
            table = pa.table(arrays)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table.cast(writer.schema))
            count += len(rows)
        if writer is None:
            schema = pa.schema(
                [("id", pa.string()), ("split", pa.string()), ("label", pa.string())]
            )
            pq.write_table(schema.empty_table(), out)
    finally:
        if writer is not None:
            writer.close()
    return count
