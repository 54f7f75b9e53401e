"""Reads for the explorer: samples matching a query a page at a time, their scores, saved views,
where a sample sits in its table, and the points of the embedding map."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import cast

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    Func,
    IntegerField,
    JSONField,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber

from apps.config.parsers import json_loads, storable_text
from apps.datasets.models import Dataset, LabelEvent, Sample, Split
from apps.datasets.selectors import metadata_sort_value, nearest_in_order
from apps.explorer.columns import DEFAULT_COLUMNS, columns_of
from apps.explorer.query import (
    METADATA,
    SCORE_ORDERINGS,
    SIMILAR_LIMIT,
    SIMILARITY,
    QueryError,
    RowCompare,
    Similarity,
    apply,
    check_ordering,
    has_similarity,
    joined,
    parse,
    parts_of,
    ranked_similarity,
    simple_filters,
)
from apps.quality.models import RunStatus, SampleScore, ScoringRun
from apps.quality.selectors import latest_done_run

# --- The explorer: samples matching a query, a page at a time ----------------------------------

SCORE_COLUMNS = (
    "suggested_label",
    "likely_mislabeled",
    "mislabel_score",
    "error_potential",
    "margin",
    "outlier_score",
    "knn_agreement",
    "duplicate_group",
    "cluster",
    "coverage",
    "x",
    "y",
    "flags",
    "reasons",
)


def samples_matching(
    dataset: Dataset, *, query, run, removed: bool = False, extra_scores=()
) -> QuerySet[Sample]:
    """The dataset's samples (active ones, or the removed ones) that match the query, with the
    run's scores the query reads annotated as `score_<name>`. QueryError when it is bad."""
    samples = Sample.objects.filter(dataset=dataset, active=not removed)
    return apply(samples, dataset, run, query, extra_scores=extra_scores)


@dataclass
class SamplePage:
    samples: list[Sample]
    next: str | None  # cursors
    previous: str | None
    estimated_count: int | None
    exact: bool = False  # the count is exact: the page holds every match


def sample_page(
    dataset: Dataset,
    *,
    query,
    run,
    ordering: str | None = None,
    cursor: str | None = None,
    size: int = 50,
    removed: bool = False,
    count: bool = True,
) -> SamplePage:
    """One page of matching samples by keyset pagination on (ordering field, id): no OFFSET,
    so page 1,000 costs what page 1 does. Ordering by a score lists the samples that have it.
    The count is the planner's estimate: an exact COUNT would read every matching row."""
    name, descending = check_ordering(ordering, run)
    if name == SIMILARITY and descending and not removed:
        ranked = ranked_similarity(dataset, query)
        if ranked is not None:
            page = _page_by_similarity(dataset, ranked, cursor=cursor, size=size)
            if page is not None:
                return page
    score = name in SCORE_ORDERINGS
    samples = samples_matching(
        dataset, query=query, run=run, removed=removed, extra_scores={name} if score else ()
    )
    if name != "id" and not score and name != SIMILARITY:
        return _page_by_value(
            samples,
            name,
            descending,
            cursor=cursor,
            size=size,
            count=count,
            pinned=_pinned_value(query, name),
        )
    if name == SIMILARITY:
        if SIMILARITY not in samples.query.annotations:
            raise QueryError(
                "ordering", "similarity orders a query with a similar_to or similar_text condition"
            )
        samples = samples.filter(**{f"{SIMILARITY}__isnull": False})
        keys: tuple[str, ...] = (SIMILARITY, "pk")
    elif score:
        # The score table's own sample column, so the (run, score, sample) index serves both
        # the order and the cursor's row comparison.
        samples = samples.filter(**{f"score_{name}__isnull": False}).annotate(
            score_key=F("run_score__sample_id")
        )
        keys = (f"score_{name}", "score_key")
    else:
        keys = ("pk",)
    position = _decode_cursor(cursor) if cursor else None
    backwards = bool(position and position.get("back"))
    forward_desc = descending != backwards  # walking back reverses the order
    if position is not None:
        values = position.get("at")
        if not isinstance(values, list) or len(values) != len(keys):
            raise QueryError("cursor", "is not a cursor of this ordering")
        samples = samples.filter(_after(keys, values, desc=forward_desc))
    order = [F(k).desc() if forward_desc else F(k).asc() for k in keys]
    rows = list(samples.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()

    def at(sample) -> list:
        return [getattr(sample, k) if k != "pk" else sample.pk for k in keys]

    return _paged(samples, rows, position, backwards=backwards, more=more, count=count, at=at)


def _page_by_similarity(
    dataset: Dataset, ranked: Similarity, *, cursor: str | None, size: int
) -> SamplePage | None:
    """A page of a query that is one similarity condition, nearest first, read from the HNSW
    index a page at a time: what the page shows and one more, not the SIMILAR_LIMIT neighbours
    the condition stands for. The same samples, in the same order, as the general path (exact
    similarities, ties by id, highest first), which it leaves to (None) when a page would end
    inside a run of equal similarities or the cursor does not say how far down the list it is.

    The cursor holds (similarity, id) of a sample and `n`, its rank: a page never goes past
    rank SIMILAR_LIMIT, and a page back reads the ranks before it."""
    position = _decode_cursor(cursor) if cursor else None
    at, given = (None, 0) if position is None else (position.get("at"), position.get("n"))
    if position is not None and (
        not isinstance(at, list)
        or len(at) != 2
        or isinstance(at[0], bool)
        or not isinstance(at[0], int | float)
        or isinstance(at[1], bool)
        or not isinstance(at[1], int)
        or isinstance(given, bool)
        or not isinstance(given, int)
        or not 1 <= given <= SIMILAR_LIMIT
    ):
        return None  # not one of these cursors: the general path reads it
    rank = int(given or 0)
    after = None if at is None else (float(at[0]), int(at[1]))
    backwards = bool(position and position.get("back"))

    def near(limit: int, after) -> list[tuple[int, float]]:
        found = nearest_in_order(
            ranked.space, ranked.vector, limit=limit, exclude=ranked.exclude, after=after
        )
        kept = []
        for sample_id, similarity in found:
            if similarity < ranked.min_similarity:
                break  # in strict order: none after it is closer
            kept.append((sample_id, similarity))
        kept.sort(key=lambda row: (-row[1], -row[0]))
        return kept

    if backwards:
        # The ranks before `at`, read from the top: all of them, or the general path.
        before = [row for row in near(rank, None) if after and (row[1], row[0]) > after]
        if len(before) != rank - 1:
            return None
        start = max(0, rank - 1 - size)
        rows, more = before[start:], True
    else:
        room = min(size, SIMILAR_LIMIT - rank)
        if room <= 0:
            rows, start, more = [], rank, False
        else:
            found = near(room + 1, after)
            rows, start = found[:room], rank
            more = len(found) > room and rank + room < SIMILAR_LIMIT
            if len(found) > room and found[room][1] == found[room - 1][1]:
                return None  # a tie across the page's end: which of them come first is by id
    by_id = {
        s.pk: s
        for s in Sample.objects.filter(
            dataset=dataset, active=True, pk__in=[row[0] for row in rows]
        )
    }
    samples = []
    for sample_id, similarity in rows:
        sample = by_id.get(sample_id)
        if sample is None:
            return None  # changed under the search: the general path reads it whole
        setattr(sample, SIMILARITY, similarity)  # as the general path annotates it
        samples.append(sample)
    next_cursor = previous_cursor = None
    if samples and more:
        last = rows[len(samples) - 1]
        next_cursor = _encode_cursor({"at": [last[1], last[0]], "n": start + len(samples)})
    if samples and start > 0:
        previous_cursor = _encode_cursor(
            {"at": [rows[0][1], rows[0][0]], "back": True, "n": start + 1}
        )
    if position is None and not more:
        return SamplePage(samples, None, None, len(samples), exact=True)
    # Counting the matches would be the whole search a page spares: the condition's cap, or
    # what is known when the list has ended.
    estimate = SIMILAR_LIMIT if more else start + len(samples)
    return SamplePage(samples, next_cursor, previous_cursor, estimate)


def _paged(samples, rows, position, *, backwards: bool, more: bool, count: bool, at) -> SamplePage:
    """The page of `rows` with its cursors and the estimated count of `samples`."""
    next_cursor = previous_cursor = None
    if rows:
        if more or backwards:
            next_cursor = _encode_cursor({"at": at(rows[-1])})
        if position is not None and (more or not backwards):
            previous_cursor = _encode_cursor({"at": at(rows[0]), "back": True})
    if position is None and not more:  # one page holds them all: the count is known
        return SamplePage(rows, None, None, len(rows), exact=True)
    estimate = _estimated_count(samples) if count else None
    if estimate is not None:
        estimate = max(estimate, len(rows) + int(more))
    return SamplePage(rows, next_cursor, previous_cursor, estimate)


def sort_value(name: str):
    """What a value ordering (label, split, external_id, metadata.KEY) sorts by: the column, or
    the metadata value as JSON (numbers by number, strings by text; a JSON null is missing)."""
    if name.startswith(METADATA):
        return metadata_sort_value(name[len(METADATA) :])
    return F(name)


def _pinned_value(query, name: str):
    """The value a query's `metadata.KEY = value` condition (alone or in its top-level `all`)
    gives every match's `name`, when that is the metadata key sorted by: the match's sort
    value then equals it (jsonb containment of a scalar is equality of the key's value), which,
    said outright, lets an index on the key go straight to those samples instead of walking the
    values before them. None otherwise."""
    if not name.startswith(METADATA):
        return None
    for part in parts_of(query):
        if (
            isinstance(part, dict)
            and set(part) == {"field", "op", "value"}
            and part["field"] == name
            and part["op"] == "="
            and isinstance(part["value"], str | int | float)  # bool is an int too
        ):
            return part["value"]
    return None


def _page_by_value(
    samples: QuerySet,
    name: str,
    descending: bool,
    *,
    cursor: str | None,
    size: int,
    count: bool,
    pinned=None,
) -> SamplePage:
    """A page of samples sorted by a value that may be missing, then id: missing values last
    whichever the direction, and the cursor (value, id) says where a page stops, missing or not.

    The samples with a value and those without are read apart, each in one order an index on
    (dataset, value, id) serves either way (NULLS LAST descending is no index's order), the
    missing ones only when those with a value run out before the page is full."""
    samples = samples.annotate(sort_value=sort_value(name))
    present = samples.filter(sort_value__isnull=False)
    missing = samples.filter(sort_value__isnull=True)
    if pinned is not None:  # every match has this value: none is missing it
        present = present.filter(sort_value=Value(pinned, output_field=JSONField()))
        missing = missing.none()
    position = _decode_cursor(cursor) if cursor else None
    backwards = bool(position and position.get("back"))
    desc = descending != backwards  # walking back reverses the order, missing values first
    parts = [missing, present] if backwards else [present, missing]
    if position is not None:
        at = position.get("at")
        metadata = name.startswith(METADATA)
        if (
            not isinstance(at, list)
            or len(at) != 2
            or not (metadata or at[0] is None or isinstance(at[0], str))
            or isinstance(at[1], bool)
            or not isinstance(at[1], int)
        ):
            raise QueryError("cursor", "is not a cursor of this ordering")
        value, pk = at
        if value is None:  # among the missing ones, which come last (first walking back)
            missing = missing.filter(**{f"pk__{'lt' if desc else 'gt'}": pk})
            parts = [missing, present] if backwards else [missing]
        else:
            given = Value(value, output_field=JSONField()) if metadata else Value(value)
            present = present.filter(
                RowCompare([F("sort_value"), F("pk")], [given, Value(pk)], "<" if desc else ">")
            )
            parts = [present] if backwards else [present, missing]
    by_id = F("pk").desc() if desc else F("pk").asc()
    rows: list[Sample] = []
    for part in parts:
        if part is present:
            order = [F("sort_value").desc() if desc else F("sort_value").asc(), by_id]
        else:
            order = [by_id]
        rows += part.order_by(*order)[: size + 1 - len(rows)]
        if len(rows) > size:
            break
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    return _paged(
        samples,
        rows,
        position,
        backwards=backwards,
        more=more,
        count=count,
        at=lambda sample: [sample.sort_value, sample.pk],
    )


def samples_chosen(
    dataset: Dataset, *, query, run, ordering: str = "", ids=None, samples=None, limit: int
) -> list[Sample]:
    """What a review session or relabel batch is made of: the given `samples` of the dataset (a
    rule's matches), or the first `limit` matches of the query in its ordering, narrowed to `ids`
    when given. A bad query is a ValidationError on "query"."""
    if samples is not None:
        return [s for s in samples if s.dataset_id == dataset.pk][:limit]
    try:
        page = sample_page(
            dataset, query=query or {}, run=run, ordering=ordering or "id", size=limit, count=False
        )
    except QueryError as exc:
        raise ValidationError({"query": str(exc)}) from None
    wanted = set(ids) if ids is not None else None
    return [s for s in page.samples if wanted is None or s.pk in wanted]


def _after(keys: tuple[str, ...], values: list, *, desc: bool):
    if len(keys) == 1:
        return Q(**{f"{keys[0]}__{'lt' if desc else 'gt'}": values[0]})
    return Q(RowCompare([F(k) for k in keys], [Value(v) for v in values], "<" if desc else ">"))


def _encode_cursor(position: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict:
    try:
        position = json_loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise QueryError("cursor", "is not a valid cursor") from None
    if not isinstance(position, dict) or not storable_text(position):
        raise QueryError("cursor", "is not a valid cursor")
    return position


def _estimated_count(samples: QuerySet) -> int:
    """The planner's row estimate for the query (EXPLAIN, nothing is read)."""
    plan = json.loads(samples.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def scores_of_samples(run, sample_ids) -> dict[int, dict]:
    """The run's scores of these samples, by sample id."""
    if run is None:
        return {}
    rows = SampleScore.objects.filter(run=run, sample_id__in=list(sample_ids)).values(
        "sample_id", *SCORE_COLUMNS
    )
    return {row.pop("sample_id"): row for row in rows}


def metadata_keys(dataset: Dataset, *, limit: int, look_at: int = 5_000) -> list[str]:
    """The metadata keys found in up to `look_at` of the dataset's samples, A to Z, at most
    `limit`: a menu's choices, without reading every sample of a large dataset."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT key FROM (SELECT metadata FROM datasets_sample"
            " WHERE dataset_id = %s AND active LIMIT %s) picked, jsonb_object_keys(CASE WHEN"
            " jsonb_typeof(picked.metadata) = 'object' THEN picked.metadata ELSE '{}'::jsonb"
            " END) AS key ORDER BY key LIMIT %s",
            [dataset.pk, look_at, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def saved_views_of_dataset(dataset: Dataset) -> QuerySet:
    return dataset.saved_views.select_related("created_by").order_by("name", "id")


@dataclass
class Exploration:
    """What the table, the map and the API were asked for: a query, a run and an ordering."""

    query: object
    run: object
    ordering: str
    view: object = None
    removed: bool = False
    columns: list[str] = field(default_factory=lambda: list(DEFAULT_COLUMNS))


def exploration(dataset: Dataset, params) -> Exploration:
    """Read `q` (JSON), `view` (a saved view's id, whose query, ordering and columns `q`,
    `ordering` and `columns` override), `run` (default: the newest finished one), `ordering`,
    `columns`, `removed`, and the plain filters of older links (see query.simple_filters), which
    join the query. QueryError if bad."""
    view = None
    if params.get("view"):
        view_id = str(params["view"])
        view = dataset.saved_views.filter(pk=int(view_id)).first() if view_id.isdigit() else None
        if view is None:
            raise QueryError("view", f"the dataset has no saved view {view_id}")
    raw = params.get("q")
    # URL text, or a query already parsed (a JSON body)
    query = (parse(raw) if isinstance(raw, str) else raw) if raw else (view.query if view else {})
    if extra := simple_filters(params):
        query = joined([*parts_of(query), *extra])
    # A similarity search lists the nearest first unless asked otherwise.
    ordering = (
        params.get("ordering")
        or (view.ordering if view else "")
        or ("-" + SIMILARITY if has_similarity(query) else "id")
    )
    run_id = str(params.get("run") or "")
    if run_id:
        found = (
            dataset.scoring_runs.filter(status=RunStatus.DONE, pk=int(run_id))
            if run_id.isdigit()
            else None
        )
        run = found.first() if found is not None else None
        if run is None:
            raise QueryError("run", f"the dataset has no finished scoring run {run_id}")
    else:
        run = latest_done_run(dataset)
    check_ordering(ordering, run)
    removed = str(params.get("removed") or "").lower() in ("true", "1", "on")
    columns = columns_of(params.get("columns") or (view.columns if view else None))
    return Exploration(
        query=query, run=run, ordering=ordering, view=view, removed=removed, columns=columns
    )


def exploration_page(
    dataset: Dataset, found: Exploration, *, cursor: str | None, size: int
) -> SamplePage:
    """The page of samples an exploration asks for: its query, run, ordering and removed."""
    return sample_page(
        dataset,
        query=found.query,
        run=found.run,
        ordering=found.ordering,
        cursor=cursor,
        size=size,
        removed=found.removed,
    )


def steps_in_query(
    dataset: Dataset, sample: Sample, *, query, run, ordering: str, removed: bool = False
) -> tuple[int | None, int | None]:
    """The ids before and after the sample in the table it was opened from (same query and
    ordering), for next/previous on the sample page."""
    try:
        name, _descending = check_ordering(ordering, run)
    except QueryError:
        return None, None
    at: list
    if name == "id":
        at = [sample.pk]
    elif name not in SCORE_ORDERINGS and name != SIMILARITY:
        value = (
            Sample.objects.filter(pk=sample.pk)
            .annotate(sort_value=sort_value(name))
            .values_list("sort_value", flat=True)
            .first()
        )
        at = [value, sample.pk]
    elif name == SIMILARITY:
        if not has_similarity(query):
            return None, None
        value = (
            samples_matching(dataset, query=query, run=run, removed=removed)
            .filter(pk=sample.pk)
            .values_list(SIMILARITY, flat=True)
            .first()
        )
        if value is None:
            return None, None
        at = [value, sample.pk]
    else:
        value = scores_of_samples(run, [sample.pk]).get(sample.pk, {}).get(name)
        if value is None:
            return None, None
        at = [value, sample.pk]
    steps = []
    for back in (True, False):
        try:
            page = sample_page(
                dataset,
                query=query,
                run=run,
                ordering=ordering,
                cursor=_encode_cursor({"at": at, "back": back}),
                size=1,
                removed=removed,
                count=False,
            )
        except QueryError:
            return None, None
        steps.append(page.samples[0].pk if page.samples else None)
    return steps[0], steps[1]


# --- The gallery: every match's id in order, and the cells of some ------------------------------

GALLERY_LIMIT = 300_000  # ids the gallery lays out at most; a narrower filter shows the rest


@dataclass
class GalleryOrder:
    ids: list[int]
    truncated: bool  # more samples match than GALLERY_LIMIT
    groups: list[list[int]] | None = None  # duplicate groups mode: each group's ids, in order


def gallery_order(
    dataset: Dataset, found: Exploration, *, limit: int = GALLERY_LIMIT
) -> GalleryOrder:
    """The ids of every sample the exploration matches, in its ordering (the table's order, one
    query, ids only): the gallery lays out its grid from them and fetches cells as they show.
    QueryError when the query or ordering is bad."""
    run = cast("ScoringRun | None", found.run)
    name, descending = check_ordering(found.ordering, run)
    score = name in SCORE_ORDERINGS
    samples = samples_matching(
        dataset,
        query=found.query,
        run=run,
        removed=found.removed,
        extra_scores={name} if score else (),
    )
    by_id = F("pk").desc() if descending else F("pk").asc()
    if name == "id":
        order = [by_id]
    elif name == SIMILARITY:
        if SIMILARITY not in samples.query.annotations:
            raise QueryError(
                "ordering", "similarity orders a query with a similar_to or similar_text condition"
            )
        samples = samples.filter(**{f"{SIMILARITY}__isnull": False})
        order = [F(SIMILARITY).desc() if descending else F(SIMILARITY).asc(), by_id]
    elif score:
        samples = samples.filter(**{f"score_{name}__isnull": False})
        key = F(f"score_{name}")
        order = [key.desc() if descending else key.asc(), by_id]
    else:  # a value, missing ones last either way (as the table pages them)
        samples = samples.annotate(sort_value=sort_value(name))
        value = F("sort_value")
        order = [value.desc(nulls_last=True) if descending else value.asc(nulls_last=True), by_id]
    ids = list(samples.order_by(*order).values_list("pk", flat=True)[: limit + 1])
    return GalleryOrder(ids=ids[:limit], truncated=len(ids) > limit)


def gallery_groups(
    dataset: Dataset, found: Exploration, *, limit: int = GALLERY_LIMIT
) -> GalleryOrder:
    """The run's near-duplicate groups among the exploration's matches: each group's members by
    id, the largest groups first. QueryError when the query is bad or there is no run."""
    if found.run is None:
        raise QueryError("mode", "duplicate groups need a finished scoring run")
    key = "score_duplicate_group"
    samples = samples_matching(
        dataset,
        query=found.query,
        run=found.run,
        removed=found.removed,
        extra_scores={"duplicate_group"},
    ).filter(**{f"{key}__isnull": False})
    rows = samples.order_by(key, "pk").values_list("pk", key)[: limit + 1]
    members: dict[int, list[int]] = {}
    for pk, group in rows:
        members.setdefault(group, []).append(pk)
    groups = sorted(members.values(), key=lambda ids: (-len(ids), ids[0]))
    ids = [pk for group in groups for pk in group]
    return GalleryOrder(ids=ids[:limit], truncated=len(ids) > limit, groups=groups)


def gallery_cells(dataset: Dataset, run, ids) -> list[dict]:
    """What the gallery shows of these samples of the dataset (others are left out), in the
    order asked: id, label,
    split, image path, the run's main scores and flags, its reasons, a pending draft change."""
    ids = list(ids)
    where = {pk: i for i, pk in enumerate(ids)}
    rows = sorted(
        Sample.objects.filter(dataset=dataset, pk__in=ids).values(
            "pk", "external_id", "label", "split", "image", "active"
        ),
        key=lambda row: where[row["pk"]],
    )
    found = [row["pk"] for row in rows]
    scores: dict[int, dict] = {}
    if run is not None and found:
        scores = {
            row["sample_id"]: dict(row)
            for row in SampleScore.objects.filter(run=run, sample_id__in=found).values(
                "sample_id",
                "suggested_label",
                "likely_mislabeled",
                "mislabel_score",
                "outlier_score",
                "duplicate_group",
                "flags",
                "reasons",
            )
        }
    drafts = {
        row["sample_id"]: row
        for row in LabelEvent.objects.filter(
            dataset=dataset, version=None, sample_id__in=found
        ).values("sample_id", "label", "removed")
    }
    return [
        {**row, "scores": scores.get(row["pk"]), "draft": drafts.get(row["pk"])} for row in rows
    ]


# --- The embedding map ----------------------------------------------------------------------------

MAP_LIMIT = 100_000  # points the map draws at most; above it, a sample stratified by label
# Scores the map can colour by on a continuous scale (`?color=`); x and y are the map itself.
MAP_NUMERIC_SCORES = (
    "mislabel_score",
    "error_potential",
    "margin",
    "outlier_score",
    "knn_agreement",
    "coverage",
)
_MAP_COLUMNS = ("x", "y", "suggested_label", "cluster")


def map_scores(color: str | None = None) -> set[str]:
    """The run's scores `map_points` reads: give them to `samples_matching(extra_scores=...)`."""
    return {*_MAP_COLUMNS, *([color] if color else [])}


def _quotas(counts: dict, limit: int) -> dict:
    """Each label's share of `limit`, proportional to its count, summing to exactly `limit`
    (largest remainder; ties go to the larger class, then the label, so it is deterministic)."""
    total = sum(counts.values())
    exact = {label: n * limit / total for label, n in counts.items()}
    quotas = {label: int(share) for label, share in exact.items()}
    rest = limit - sum(quotas.values())
    by_remainder = sorted(
        counts, key=lambda label: (-(exact[label] - quotas[label]), -counts[label], str(label))
    )
    for label in by_remainder[:rest]:
        quotas[label] += 1
    return quotas


def _stratified(placed: QuerySet, counts: dict, limit: int) -> QuerySet:
    """`limit` of the placed samples, each label keeping its share (`_quotas`). Within a label
    the samples with the lowest hash of their id are kept: spread over the whole dataset (not
    the oldest), and the same every time.

    All in SQL, and without sorting every row: a label's candidates are first cut to the hashes
    below a threshold that lets through a few more than its quota (the hash is uniform, so the
    number let through is binomial; four standard deviations spare), and only those are ranked.
    The result is the same as ranking them all, unless a label falls short of its quota, which
    then keeps every candidate it had.
    """
    quotas = _quotas(counts, limit)

    def by_label(values: dict, field, default: int = 0) -> Case:
        return Case(
            *(
                When(label__isnull=True, then=Value(v))
                if label is None
                else When(label=label, then=Value(v))
                for label, v in values.items()
            ),
            default=Value(default),
            output_field=field,
        )

    span = 2**32  # hashint8 is a 32-bit signed integer, uniform over its range
    thresholds = {}
    for label, quota in quotas.items():
        share = min(1.0, (quota + 4 * math.sqrt(quota) + 20) / counts[label])
        thresholds[label] = min(2**31, math.floor(share * span) - 2**31)
    hashed = placed.annotate(
        map_hash=Func(F("pk"), function="hashint8", output_field=IntegerField())
    ).filter(map_hash__lt=by_label(thresholds, BigIntegerField(), -(2**31)))
    rank = Window(
        RowNumber(), partition_by=[F("label")], order_by=[F("map_hash").asc(), F("pk").asc()]
    )
    return hashed.annotate(map_rank=rank, map_quota=by_label(quotas, IntegerField())).filter(
        map_rank__lte=F("map_quota")
    )


def _decimals(low: float, high: float) -> int:
    """Decimals that keep 10,000 to 100,000 steps across the map: finer is invisible, and costs
    bytes."""
    span = high - low
    return max(0, 4 - math.floor(math.log10(span))) if span > 0 else 4


def map_points(
    dataset: Dataset,
    run: ScoringRun,
    samples: QuerySet,
    *,
    limit: int = MAP_LIMIT,
    color: str | None = None,
    only_color: bool = False,
) -> dict:
    """The points of the run's 2D map, as columns (index i of every list is one sample, by id).

    `samples` comes from `samples_matching(..., extra_scores=map_scores(color))`; samples the run
    did not place (no x/y) are left out. Above `limit` points, a sample stratified by label is
    drawn. Labels, suggested labels and splits are indices into `labels` and `splits` (-1: none);
    `color` adds that score's values (null where missing) as `score`. With `only_color`, only
    `ids` and `score` are sent: the map already holds the rest.
    """
    placed = samples.filter(score_x__isnull=False, score_y__isnull=False)
    counts = {
        row["label"]: row["n"]
        for row in placed.order_by().values("label").annotate(n=Count("pk")).order_by("label")
    }
    total = sum(counts.values())
    sampled = total > limit
    chosen = _stratified(placed, counts, limit) if sampled else placed
    if only_color:
        columns = ["pk", f"score_{color}"]
    else:
        columns = ["pk", "score_x", "score_y", "label", "split", "score_suggested_label"]
        columns += ["score_cluster", *([f"score_{color}"] if color else [])]
    rows = list(chosen.order_by("pk").values_list(*columns))
    data: dict = {"run": run.pk, "count": len(rows), "total": total, "sampled": sampled}
    ids = [row[0] for row in rows]
    if color:
        values = [row[-1] for row in rows]
        known = [v for v in values if v is not None]
        data["color"] = color
        data["score"] = [None if v is None else round(v, 3) for v in values]
        data["score_range"] = [min(known), max(known)] if known else None
    if only_color:
        return {**data, "ids": ids}

    labels = list(dataset.labels)
    splits = list(Split.values)
    label_index = {label: i for i, label in enumerate(labels)}
    split_index = {split: i for i, split in enumerate(splits)}
    xs = [row[1] for row in rows]
    ys = [row[2] for row in rows]
    bounds = {"x": [min(xs), max(xs)], "y": [min(ys), max(ys)]} if rows else None
    dx = _decimals(*bounds["x"]) if bounds else 0
    dy = _decimals(*bounds["y"]) if bounds else 0
    return {
        **data,
        "labels": labels,
        "splits": splits,
        "bounds": bounds,
        "ids": ids,
        "x": [round(x, dx) for x in xs],
        "y": [round(y, dy) for y in ys],
        "label": [label_index.get(row[3], -1) for row in rows],
        "split": [split_index.get(row[4], -1) for row in rows],
        "suggested": [label_index.get(row[5], -1) for row in rows],
        "cluster": [-1 if row[6] is None else row[6] for row in rows],
    }
