"""Read a dataset's vectors out of PostgreSQL as NumPy arrays, fast.

A scoring run reads every embedding of a space (a million 384-d rows is 1.5 GB): binary COPY
parsed by NumPy in one go costs seconds where a row-by-row fetch costs minutes.
"""

from __future__ import annotations

import struct

import numpy as np

from apps.datasets.importing.loader import raw_connection

_HEADER = 19  # PGCOPY signature (11) + flags (4) + header extension length (4)


def _copy_out(sql: str, params: list) -> bytes:
    with raw_connection() as conn, conn.cursor() as cur:
        with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params) as copy:
            return b"".join(bytes(chunk) for chunk in copy)


def read_vectors(sql: str, params: list) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) from a query selecting (bigint id, vector) rows that all have one dimension."""
    data = _copy_out(sql, params)
    body = memoryview(data)[_HEADER:-2]  # without the header and the -1 trailer
    if len(body) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    # Row layout: int16 count, int32 len, int64 id, int32 len, int16 dim, int16 unused, float32 × dim
    dim = struct.unpack(">h", body[2 + 4 + 8 + 4 : 2 + 4 + 8 + 4 + 2])[0]
    row = np.dtype(
        [
            ("count", ">i2"),
            ("len0", ">i4"),
            ("id", ">i8"),
            ("len1", ">i4"),
            ("dim", ">i2"),
            ("pad", ">i2"),
            ("v", ">f4", (dim,)),
        ]
    )
    if len(body) % row.itemsize:
        raise ValueError("Vectors of more than one dimension in one space.")
    rows = np.frombuffer(body, dtype=row)
    return rows["id"].astype(np.int64), rows["v"].astype(np.float32)


def space_vectors(space_id: int) -> tuple[np.ndarray, np.ndarray]:
    return read_vectors(
        "SELECT sample_id, vector FROM datasets_embedding WHERE space_id = %s ORDER BY sample_id",
        [space_id],
    )


def run_probs(run_id: int, *, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return read_vectors(
        "SELECT sample_id, probs FROM datasets_prediction WHERE run_id = %s AND epoch = %s ORDER BY sample_id",
        [run_id, epoch],
    )


def align(
    ids: np.ndarray, found_ids: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`values` rearranged to follow `ids` (sorted), and a mask of the ids that had a row."""
    out = np.zeros(
        (len(ids), values.shape[1] if values.ndim == 2 and len(values) else 0), dtype=np.float32
    )
    where = np.searchsorted(found_ids, ids)
    where = np.clip(where, 0, max(len(found_ids) - 1, 0))
    present = (found_ids[where] == ids) if len(found_ids) else np.zeros(len(ids), dtype=bool)
    if present.any():
        out[present] = values[where[present]]
    return out, present
