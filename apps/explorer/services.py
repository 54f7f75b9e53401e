"""Writes of the explorer: tag, untag, relabel and remove a selection of samples (the bulk
actions of `apps.explorer.actions.samples`), and saved views."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from apps import annotations as task_types
from apps.core import events
from apps.datasets import services as dataset_services
from apps.datasets.models import Dataset, LabelSource, Tag
from apps.explorer.columns import columns_of
from apps.explorer.models import SavedView
from apps.explorer.query import METADATA, QueryError, check_ordering, compile_query

TAG_MAX = 80


def _selection_sql(samples) -> tuple[str, tuple]:
    """The SQL of a selection's sample ids, to act on every match in one statement."""
    sql, params = samples.order_by().values("pk").query.sql_with_params()
    return sql, tuple(params)


def tag_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > TAG_MAX:
        raise ValidationError({"tag": f"A tag is 1 to {TAG_MAX} characters."})
    return name


@transaction.atomic
def samples_tag(*, dataset: Dataset, samples, tag: str, by) -> int:
    """Put the tag (made if new) on every sample of the selection; returns how many got it."""
    tag_row, _ = Tag.objects.get_or_create(
        dataset=dataset, name=tag_name(tag), defaults={"created_by": by}
    )
    sql, params = _selection_sql(samples)
    with connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO datasets_sampletag (tag_id, sample_id, by_id, created_at)
                SELECT %s, m.id, %s, now() FROM ({sql}) m(id) ON CONFLICT DO NOTHING""",  # noqa: S608
            (tag_row.pk, getattr(by, "pk", None), *params),
        )
        return cur.rowcount


@transaction.atomic
def samples_untag(*, dataset: Dataset, samples, tag: str) -> int:
    tag_row = Tag.objects.filter(dataset=dataset, name=tag_name(tag)).first()
    if tag_row is None:
        raise ValidationError({"tag": f"The dataset has no tag {tag!r}."})
    sql, params = _selection_sql(samples)
    with connection.cursor() as cur:
        cur.execute(
            f"DELETE FROM datasets_sampletag WHERE tag_id = %s AND sample_id IN ({sql})",  # noqa: S608
            (tag_row.pk, *params),
        )
        return cur.rowcount


SUGGESTED = "suggested"


@transaction.atomic
def samples_relabel(
    *, dataset: Dataset, samples, label: str | None, by, reason: str = "", run=None
) -> int:
    """Put a relabel of every selected sample in the draft: to `label`, or with
    label="suggested" to each one's suggested label in `run`. Samples that already have
    the label are left alone; returns how many changes the draft got."""
    sql, params = _selection_sql(samples)
    if label == SUGGESTED:
        if run is None:
            raise ValidationError({"label": "Suggested labels need a finished scoring run."})
        target = (
            f"SELECT sc.sample_id AS id, sc.suggested_label AS label FROM ({sql}) m(id) "  # noqa: S608
            "JOIN quality_samplescore sc ON sc.sample_id = m.id AND sc.run_id = %s "
            "WHERE sc.suggested_label IS NOT NULL"
        )
        params = (*params, run.pk)
    else:
        if label is not None and (
            problem := task_types.of(dataset).values.check(label, schema=dataset.labels)
        ):
            raise ValidationError({"label": problem.message})
        target = f"SELECT m.id, %s::text AS label FROM ({sql}) m(id)"  # noqa: S608
        params = (label, *params)
    return _draft_events(dataset=dataset, target=target, params=params, by=by, reason=reason)


@transaction.atomic
def samples_remove(*, dataset: Dataset, samples, by, reason: str = "") -> int:
    """Put the removal of every selected sample in the draft; returns how many."""
    sql, params = _selection_sql(samples)
    target = f"SELECT m.id, NULL::text AS label FROM ({sql}) m(id)"  # noqa: S608
    return _draft_events(
        dataset=dataset, target=target, params=params, by=by, reason=reason, removed=True
    )


def _draft_events(
    *, dataset: Dataset, target: str, params: tuple, by, reason: str, removed: bool = False
) -> int:
    """One draft event per target row (id, label), replacing the sample's earlier draft one."""
    # A relabel to the label a sample already has is no change; a removal always is.
    changed = "" if removed else " AND s.label IS DISTINCT FROM t.label"
    label = "s.label" if removed else "t.label"
    with connection.cursor() as cur:
        cur.execute(
            f"""CREATE TEMPORARY TABLE bulk_target ON COMMIT DROP AS
                SELECT t.id, {label} AS label FROM ({target}) t
                JOIN datasets_sample s ON s.id = t.id AND s.dataset_id = %s
                WHERE s.active{changed}""",  # noqa: S608 - our own fragments only
            (*params, dataset.pk),
        )
        cur.execute(
            "DELETE FROM datasets_labelevent e USING bulk_target t "
            "WHERE e.sample_id = t.id AND e.version IS NULL"
        )
        cur.execute(
            """INSERT INTO datasets_labelevent
                   (dataset_id, sample_id, version, label, removed, source, by_id, reason, created_at)
               SELECT %s, t.id, NULL, t.label, %s, %s, %s, %s, now() FROM bulk_target t""",
            (dataset.pk, removed, LabelSource.MANUAL, getattr(by, "pk", None), reason),
        )
        count = cur.rowcount
        cur.execute("DROP TABLE bulk_target")
    return count


@transaction.atomic
def saved_view_create(
    *, dataset: Dataset, name: str, query, ordering: str = "", columns=None, by, run=None
) -> SavedView:
    """Save a query (checked now, against `run`), ordering and columns (none: the table's
    default ones) under a name of the dataset."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the view a name."})
    try:
        compile_query(dataset, run, query)
        check_ordering(ordering, run)
        chosen = columns_of(columns) if columns else []
    except QueryError as exc:
        raise ValidationError(
            {exc.path if exc.path in ("ordering", "columns") else "query": str(exc)}
        ) from None
    if SavedView.objects.filter(dataset=dataset, name=name).exists():
        raise ValidationError({"name": f"The dataset already has a view named {name!r}."})
    return SavedView.objects.create(
        dataset=dataset,
        name=name,
        query=query or {},
        ordering=ordering or "",
        columns=chosen,
        created_by=by,
    )


@transaction.atomic
def saved_view_delete(*, view: SavedView, by) -> None:
    events.record(
        events.Event(
            "saved_view.deleted",
            project=view.dataset.project,
            actor=by,
            audit=events.Audit(
                target=view.name,
                detail={"dataset": view.dataset.name, "dataset_id": view.dataset_id},
            ),
        )
    )
    view.delete()


def sort_index_wanted(dataset: Dataset, ordering: str) -> None:
    """The table's first page sorted by a metadata key asks for an index on that key, which a
    large dataset gets in the background (datasets.services.sort_index_request)."""
    name = (ordering or "").strip().lstrip("-")
    if name.startswith(METADATA) and name != METADATA:
        dataset_services.sort_index_request(dataset=dataset, key=name[len(METADATA) :])
