"""Embedding spaces: computed for a dataset that came without one, and their vector index."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from apps.datasets.importing.loader import binary_copy_data, copy_binary, raw_connection
from apps.datasets.models import Dataset, EmbeddingSpace
from apps.datasets.selectors import media_path, text_model_path
from workers.engine import embeddings as kernels


def _scalar(cursor: Any) -> Any:
    """The first column of a statement's one row (a SELECT of a value, an INSERT … RETURNING)."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row[0]


INDEX_BUILD_LOCK = 0x4C6F75706501  # advisory lock key: one embedding index build at a time


def embedding_index_build(*, space_id: int) -> float | None:
    """Build the space's HNSW cosine index (once); returns the seconds it took, None if it exists.

    pgvector indexes one dimension per index, so each space has a partial index on
    (vector::vector(d)) WHERE space_id = …; queries must use that same expression.
    """
    space = EmbeddingSpace.objects.filter(pk=space_id).first()
    if space is None or space.index_built_at is not None:
        return None
    started = time.monotonic()
    with raw_connection() as conn:
        conn.autocommit = True  # CREATE INDEX CONCURRENTLY cannot run in a transaction
        conn.execute(f"SET maintenance_work_mem = '{int(settings.LOUPE_INDEX_MEMORY_MB)}MB'")
        conn.execute(f"SET max_parallel_maintenance_workers = {int(settings.LOUPE_INDEX_WORKERS)}")
        # Two concurrent builds on one table wait for each other's snapshot and deadlock: one
        # build at a time (a session lock, released when this connection closes at the latest).
        # Polled, not waited for: a statement waiting on the lock holds a snapshot the running
        # build would wait for in turn.
        while not _scalar(conn.execute("SELECT pg_try_advisory_lock(%s)", [INDEX_BUILD_LOCK])):
            time.sleep(1)
        try:
            # A build that was interrupted leaves an invalid index; IF NOT EXISTS would keep it.
            invalid = conn.execute(
                "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s AND NOT i.indisvalid",
                [space.index_name],
            ).fetchone()
            if invalid:
                conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {space.index_name}")
            conn.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {space.index_name} ON datasets_embedding "
                f"USING hnsw ((vector::vector({int(space.dimension)})) vector_cosine_ops) "
                f"WHERE space_id = {int(space.pk)}"
            )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [INDEX_BUILD_LOCK])
    seconds = round(time.monotonic() - started, 2)
    EmbeddingSpace.objects.filter(pk=space.pk).update(
        index_built_at=timezone.now(), index_build_seconds=seconds
    )
    return seconds


def embeddings_compute(*, dataset_id: int, method: str | None = None) -> EmbeddingSpace | None:
    """Compute an embedding space for a dataset that came without one (see workers.engine.embeddings).

    Returns the new space, or None when the dataset already has a space made with `method`.
    """

    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        return None
    method = method or kernels.choose_method(dataset.modality)
    if dataset.embedding_spaces.filter(name=method).exists():
        return None
    rows = list(dataset.samples.order_by("id").values_list("id", "text", "fields", "image"))
    if not rows:
        return None
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    text_model = None
    if method == "minilm":
        vectors = kernels.text_minilm([r[1] for r in rows])
    elif method == "tfidf-svd":
        vectors, text_model = kernels.text_tfidf_svd([r[1] for r in rows], keep=True)
    elif method == "scaled-features":
        vectors = kernels.tabular_scaled([r[2] or {} for r in rows])
    elif method == "pixels-pca":
        vectors = kernels.image_pixels_pca(
            default_storage.open(media_path(dataset, r[3])).read() for r in rows
        )
    else:
        raise ValueError(f"Unknown embedding method {method!r}")
    del rows
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) > 1 and not np.ptp(vectors, axis=0).any():
        # Every row the same (no feature columns, say): a space that tells no sample apart
        # would only make every neighbour signal noise.
        raise ValueError(
            f"the {method} embeddings are identical for every sample: nothing to compute them from"
        )
    with raw_connection() as conn, conn.transaction():
        space_id = _scalar(
            conn.execute(
                """INSERT INTO datasets_embeddingspace (dataset_id, name, dimension, method, created_at)
               VALUES (%s, %s, %s, %s, now()) RETURNING id""",
                [dataset.pk, method, vectors.shape[1], method],
            )
        )
        for start in range(0, len(ids), 50_000):
            chunk = slice(start, start + 50_000)
            n = len(ids[chunk])
            data = binary_copy_data(
                [("int8", np.full(n, space_id)), ("int8", ids[chunk]), ("vector", vectors[chunk])]
            )
            copy_binary(conn, "datasets_embedding", ["space_id", "sample_id", "vector"], data)
    space = EmbeddingSpace.objects.get(pk=space_id)
    if text_model is not None:  # kept so that free text can be searched in this space
        default_storage.save(text_model_path(space), ContentFile(text_model.to_bytes()))
    return space
