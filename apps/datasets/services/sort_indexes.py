"""Indexes that sort a large dataset's samples by a metadata key, built in the background.

The sample table sorts by `metadata.KEY` in keyset pages on (the key's value, id). Keys are the
data's own, any number of them, so no migration can index them: a dataset of
LOUPE_SORT_INDEX_MIN_SAMPLES or more gets a partial index on that pair WHERE dataset_id = … the
first time its table is sorted by a key its samples have, as long as it holds fewer than
LOUPE_SORT_INDEXES_PER_DATASET of them and the database fewer than LOUPE_SORT_INDEXES_MAX. A
reader can ask for no more than that, and only for keys the data has. Until the index is
built, and if it never is, the table sorts the same, reading every match.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from psycopg import sql

from apps.core.tasks import task_enqueue
from apps.datasets.importing.loader import raw_connection
from apps.datasets.models import Dataset, Sample, SortIndex
from apps.datasets.selectors import metadata_sort_value
from apps.datasets.services.embeddings import _scalar

log = logging.getLogger(__name__)

SORT_INDEX_LOCK = 0x4C6F75706502  # advisory lock key: one sort index build at a time
KEYS_LOOKED_AT = 5_000  # samples a key must occur in, among the dataset's first, to be indexed


def sort_index_request(*, dataset: Dataset, key: str) -> SortIndex | None:
    """Queue the build of the index sorting the dataset by `metadata.key`, if it is large
    enough to need one, the key occurs in its first samples, and the caps leave room. Returns
    the index (building or built), or None. Cheap when there is nothing to do."""
    found = SortIndex.objects.filter(dataset=dataset, key=key).first()
    if found is not None:
        return found
    minimum = int(settings.LOUPE_SORT_INDEX_MIN_SAMPLES)
    with connection.cursor() as cur:
        # Counted up to the threshold only: an index-only scan of the (dataset, external_id) index.
        cur.execute(
            "SELECT count(*) FROM (SELECT 1 FROM datasets_sample WHERE dataset_id = %s LIMIT %s) s",
            [dataset.pk, minimum],
        )
        if _scalar(cur) < minimum:
            return None
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM (SELECT metadata FROM datasets_sample"
            " WHERE dataset_id = %s LIMIT %s) s WHERE jsonb_typeof(s.metadata) = 'object'"
            " AND s.metadata ? %s)",
            [dataset.pk, KEYS_LOOKED_AT, key],
        )
        if not _scalar(cur):
            return None
    if (
        SortIndex.objects.filter(dataset=dataset).count() >= settings.LOUPE_SORT_INDEXES_PER_DATASET
        or SortIndex.objects.count() >= settings.LOUPE_SORT_INDEXES_MAX
    ):
        return None
    try:
        with transaction.atomic():
            made = SortIndex.objects.create(dataset=dataset, key=key)
    except IntegrityError:  # asked for twice at once
        return SortIndex.objects.filter(dataset=dataset, key=key).first()
    task_enqueue("loupe.datasets.build_sort_index", made.pk, robust=True)
    return made


def sort_index_statement(index: SortIndex, *, concurrently: bool = True) -> sql.Composed:
    """CREATE INDEX (CONCURRENTLY) on the very expression the table sorts by, as the ORM writes it
    (its parameters, the key among them, as quoted literals)."""
    value = Sample.objects.annotate(v=metadata_sort_value(index.key)).values("v")
    compiler = value.query.get_compiler(connection=connection)
    expression, params = compiler.compile(value.query.annotations["v"])
    parts = expression.replace("%%", "\x00").split("%s")
    if len(parts) != len(params) + 1:
        raise ValueError("unexpected parameters in the sort expression")
    composed: list[sql.Composable] = [sql.SQL(parts[0].replace("\x00", "%"))]
    for param, part in zip(params, parts[1:], strict=True):
        composed += [sql.Literal(param), sql.SQL(part.replace("\x00", "%"))]
    return sql.SQL(
        "CREATE INDEX {how}{name} ON datasets_sample (({value}), id) WHERE dataset_id = {d}"
    ).format(
        how=sql.SQL("CONCURRENTLY " if concurrently else ""),
        name=sql.Identifier(index.index_name),
        value=sql.Composed(composed),
        d=sql.Literal(int(index.dataset_id)),
    )


def sort_index_build(*, index_id: int) -> float | None:
    """Build a requested sort index; returns the seconds it took, None when there was nothing
    to build. A failed build leaves no index and the request marked failed (not retried)."""
    index = SortIndex.objects.filter(pk=index_id).first()
    if index is None or index.state != SortIndex.State.BUILDING:
        return None
    started = time.monotonic()
    with raw_connection() as conn:
        conn.autocommit = True  # CREATE INDEX CONCURRENTLY cannot run in a transaction
        # Two concurrent builds on one table wait for each other's snapshot: one at a time,
        # polled (see embedding_index_build).
        while not _scalar(conn.execute("SELECT pg_try_advisory_lock(%s)", [SORT_INDEX_LOCK])):
            time.sleep(1)
        try:
            conn.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                    sql.Identifier(index.index_name)
                )
            )  # an interrupted build leaves an invalid one
            try:
                conn.execute(sort_index_statement(index))
            except Exception:
                log.exception("sort index %s failed", index.index_name)
                conn.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                        sql.Identifier(index.index_name)
                    )
                )
                SortIndex.objects.filter(pk=index.pk).update(state=SortIndex.State.FAILED)
                return None
            if not SortIndex.objects.filter(pk=index.pk).exists():  # the dataset went meanwhile
                conn.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                        sql.Identifier(index.index_name)
                    )
                )
                return None
            # The planner's statistics of the new expression, which it weighs the index by.
            conn.execute("ANALYZE datasets_sample")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [SORT_INDEX_LOCK])
    seconds = round(time.monotonic() - started, 2)
    SortIndex.objects.filter(pk=index.pk).update(state=SortIndex.State.READY, build_seconds=seconds)
    return seconds


def sort_indexes_drop(*, dataset: Dataset) -> None:
    """Drop the dataset's sort indexes (in the caller's transaction: its deletion)."""
    with connection.cursor() as cur:
        for index in SortIndex.objects.filter(dataset=dataset):
            cur.execute(f'DROP INDEX IF EXISTS "{index.index_name}"')
