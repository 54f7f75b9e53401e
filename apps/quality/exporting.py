"""Write a scoring run's per-sample scores as CSV or Parquet, one row per sample, streaming."""

from __future__ import annotations

import io
import json
from contextlib import closing
from typing import IO

from apps.audit.services import audit_record
from apps.core.csv import csv_writer
from apps.datasets.importing.loader import raw_connection
from apps.quality.models import ScoringRun

COLUMNS = [
    "id",
    "split",
    "label",
    "suggested_label",
    "likely_mislabeled",
    "mislabel_score",
    "error_potential",
    "margin",
    "outlier_score",
    "knn_agreement",
    "duplicate_group",
    "cluster",
    "x",
    "y",
    "coverage",
    "flags",
    "reasons",
]
SCORE_FORMATS = ("csv", "parquet")
BATCH = 20_000


def _rows(run: ScoringRun):
    sql = """
        SELECT s.external_id, s.split, s.label, c.suggested_label, c.likely_mislabeled, c.mislabel_score,
               c.error_potential, c.margin, c.outlier_score, c.knn_agreement, c.duplicate_group, c.cluster,
               c.x, c.y, c.coverage, c.flags, c.reasons
        FROM quality_samplescore c JOIN datasets_sample s ON s.id = c.sample_id
        WHERE c.run_id = %s ORDER BY c.sample_id"""
    with raw_connection() as conn, conn.transaction(), conn.cursor(name="scores") as cur:
        cur.itersize = BATCH
        cur.execute(sql, [run.pk])
        while rows := cur.fetchmany(BATCH):
            yield rows


def export_scores(*, run: ScoringRun, fmt: str, out: IO[bytes], by) -> int:
    """Write the run's scores to `out`, then record the export as `by` (None: the command line)."""
    if fmt not in SCORE_FORMATS:
        raise ValueError(f"Unknown format {fmt!r}")
    with closing(_rows(run)) as batches:
        count = (_csv if fmt == "csv" else _parquet)(batches, out)
    dataset = run.dataset
    audit_record(
        actor=by,
        action="scores.exported",
        project=dataset.project,
        target=f"{dataset.name} scoring run {run.pk}",
        detail={
            "dataset_id": dataset.pk,
            "run_id": run.pk,
            "format": fmt,
            "version": run.version,
            "rows": count,
            **({} if by else {"via": "command"}),
        },
    )
    return count


def _csv(batches, out) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv_writer(text)
    writer.writerow(COLUMNS)
    count = 0
    for rows in batches:
        for row in rows:
            *values, flags, reasons = row
            writer.writerow([*values, " ".join(flags or []), "; ".join(reasons or [])])
            count += 1
    text.detach()
    return count


def _parquet(batches, out) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("id", pa.string()),
            ("split", pa.string()),
            ("label", pa.string()),
            ("suggested_label", pa.string()),
            ("likely_mislabeled", pa.bool_()),
            ("mislabel_score", pa.float64()),
            ("error_potential", pa.float64()),
            ("margin", pa.float64()),
            ("outlier_score", pa.float64()),
            ("knn_agreement", pa.float64()),
            ("duplicate_group", pa.int64()),
            ("cluster", pa.int64()),
            ("x", pa.float64()),
            ("y", pa.float64()),
            ("coverage", pa.float64()),
            ("flags", pa.list_(pa.string())),
            ("reasons", pa.string()),
        ]
    )
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        for rows in batches:
            columns = list(zip(*rows, strict=True))
            columns[-2] = tuple(f or [] for f in columns[-2])
            columns[-1] = tuple(json.dumps(r or []) for r in columns[-1])
            writer.write_table(pa.table(dict(zip(COLUMNS, columns, strict=True)), schema=schema))
            count += len(rows)
    return count
