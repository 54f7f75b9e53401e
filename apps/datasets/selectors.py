"""Reads for datasets: what a user may see, versions and their differences."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from pgvector import Vector

from apps.datasets.models import (
    Dataset,
    DatasetVersion,
    Embedding,
    EmbeddingSpace,
    ImportJob,
    LabelEvent,
    Sample,
)


def datasets_of_project(project) -> QuerySet[Dataset]:
    return Dataset.objects.filter(project=project).order_by("name", "id")


def datasets_with_counts(project) -> QuerySet[Dataset]:
    """The project's datasets with their active sample count and newest version number."""
    from django.db.models import Max, OuterRef, Subquery

    active = (
        Sample.objects.filter(dataset=OuterRef("pk"), active=True)
        .order_by()
        .values("dataset")
        .annotate(n=Count("id"))
        .values("n")
    )
    return datasets_of_project(project).annotate(
        sample_count=Subquery(active), latest_version=Max("versions__number")
    )


def latest_version(dataset: Dataset) -> int | None:
    return dataset.versions.order_by("-number").values_list("number", flat=True).first()


def versions_of_dataset(dataset: Dataset) -> QuerySet[DatasetVersion]:
    return dataset.versions.select_related("author").order_by("-number")


def draft_of_dataset(dataset: Dataset) -> QuerySet[LabelEvent]:
    return LabelEvent.objects.filter(dataset=dataset, version=None).select_related("sample", "by")


def imports_of_dataset(dataset: Dataset) -> QuerySet[ImportJob]:
    return dataset.imports.select_related("created_by").order_by("-created_at")


def counts_by_split_and_label(dataset: Dataset) -> list[Mapping[str, Any]]:
    return list(
        Sample.objects.filter(dataset=dataset, active=True)
        .values("split", "label")
        .annotate(n=Count("id"))
        .order_by("split", "label")
    )


def label_history(sample: Sample) -> QuerySet[LabelEvent]:
    return sample.history.select_related("by").order_by("-created_at", "-id")


def version_diff(dataset: Dataset, a: int, b: int, *, limit: int = 1000) -> dict:
    """Samples added, removed and relabelled from version a to version b, with who and why."""
    state_at = """LEFT JOIN LATERAL (
            SELECT label, removed, version, by_id, reason, source FROM datasets_labelevent e
            WHERE e.sample_id = s.id AND e.version <= %({at})s ORDER BY version DESC, id DESC LIMIT 1) {alias} ON true"""
    sql = f"""
        WITH changed AS (
            SELECT sample_id AS id FROM datasets_labelevent
            WHERE dataset_id = %(d)s AND version > %(a)s AND version <= %(b)s
            UNION
            SELECT id FROM datasets_sample WHERE dataset_id = %(d)s AND added_in > %(a)s AND added_in <= %(b)s
        ), state AS (
            SELECT s.id, s.external_id,
                   CASE WHEN o.version IS NULL THEN s.first_label ELSE o.label END AS old_label,
                   CASE WHEN o.version IS NULL THEN s.added_in > %(a)s ELSE o.removed END AS old_gone,
                   CASE WHEN n.version IS NULL THEN s.first_label ELSE n.label END AS new_label,
                   CASE WHEN n.version IS NULL THEN s.added_in > %(b)s ELSE n.removed END AS new_gone,
                   coalesce(n.version, s.added_in) AS version, n.by_id, n.reason, coalesce(n.source, 'import') AS source
            FROM changed c JOIN datasets_sample s ON s.id = c.id
            {state_at.format(at="a", alias="o")}
            {state_at.format(at="b", alias="n")}
        )
        SELECT CASE WHEN old_gone AND NOT new_gone THEN 'added'
                    WHEN NOT old_gone AND new_gone THEN 'removed'
                    ELSE 'relabelled' END AS change,
               st.id, st.external_id, old_label, new_label, coalesce(u.username, vu.username),
               coalesce(st.reason, v.message), st.source, st.version
        FROM state st
        LEFT JOIN datasets_datasetversion v ON v.dataset_id = %(d)s AND v.number = st.version
        LEFT JOIN accounts_user u ON u.id = st.by_id
        LEFT JOIN accounts_user vu ON vu.id = v.author_id
        WHERE old_gone <> new_gone OR (NOT old_gone AND old_label IS DISTINCT FROM new_label)
        ORDER BY change, st.id
    """  # noqa: S608 - only our own fragments are formatted in
    counts = {"added": 0, "removed": 0, "relabelled": 0}
    changes: list[dict[str, Any]] = []
    with connection.cursor() as cur:
        cur.execute(sql, {"d": dataset.pk, "a": a, "b": b})
        for change, sid, ext, old, new, by, reason, source, version in cur:
            counts[change] += 1
            if len(changes) < limit:
                changes.append(
                    {
                        "change": change,
                        "sample_id": sid,
                        "external_id": ext,
                        "from": old,
                        "to": new,
                        "by": by,
                        "reason": reason,
                        "source": source,
                        "version": version,
                    }
                )
    return {"from": a, "to": b, "counts": counts, "changes": changes}


def embedding_space(dataset: Dataset, name: str | None = None) -> EmbeddingSpace | None:
    """The space by name, else the one scoring uses (the dataset's first)."""
    spaces = dataset.embedding_spaces.order_by("id")
    return spaces.filter(name=name).first() if name else spaces.first()


def nearest_to_vector(
    space: EmbeddingSpace,
    vector,
    *,
    limit: int = 10,
    min_similarity: float | None = None,
    exclude: int | None = None,
) -> list[dict]:
    """Active samples nearest to `vector` by cosine similarity, through the space's HNSW index.

    With `min_similarity`, pgvector's iterative index scan keeps walking the graph until it
    has `limit` samples that close or none is left, so a threshold does not end the search
    early. Approximate, like any HNSW search.
    """
    dim = int(space.dimension)
    distance = f"(e.vector::vector({dim}) <=> %(q)s::vector({dim}))"
    where = f" AND {distance} <= %(max_distance)s" if min_similarity is not None else ""
    if exclude is not None:
        where += " AND e.sample_id <> %(exclude)s"
    # The space id is part of the partial index's predicate, so it is written in, not bound.
    sql = f"""
        SELECT s.id, s.external_id, s.label, s.split, s.text, 1 - {distance} AS similarity
        FROM datasets_embedding e JOIN datasets_sample s ON s.id = e.sample_id AND s.active
        WHERE e.space_id = {int(space.pk)}{where}
        ORDER BY {distance} LIMIT %(limit)s
    """  # noqa: S608 - only integers are formatted in
    params: dict[str, Any] = {
        "q": Vector(vector).to_text(),
        "limit": int(limit),
        "max_distance": None if min_similarity is None else 1 - float(min_similarity),
        "exclude": exclude,
    }
    # A plain k-nearest look-up runs at pgvector's defaults; a threshold or a long list needs
    # the iterative scan and a wider search, set for this transaction only.
    tuned = min_similarity is not None or limit > 40
    with transaction.atomic(durable=False) if tuned else nullcontext(), connection.cursor() as cur:
        if tuned:
            cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            cur.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(int(limit), 1000))}")
        cur.execute(sql, params)
        names = [c.name for c in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    # relaxed_order may return a few neighbours out of order.
    rows.sort(key=lambda row: -row["similarity"])
    return rows


def embed_text(space: EmbeddingSpace, text: str):
    """The vector of free text in the space: MiniLM (the `embed` extra) or the space's own
    fitted LSA model. LookupError when the space cannot embed text."""
    from django.core.files.storage import default_storage

    from apps.datasets.services import text_model_path
    from workers.engine import embeddings as kernels

    if space.method == "minilm":
        try:
            return kernels.text_minilm([text])[0]
        except kernels.EmbeddingUnavailable as exc:
            raise LookupError(str(exc)) from None
    if space.method == "tfidf-svd" and default_storage.exists(text_model_path(space)):
        with default_storage.open(text_model_path(space), "rb") as f:
            model = kernels.TextLSA.from_bytes(f.read())
        if model.components.shape[0] != space.dimension:
            raise LookupError(f"the text model of {space.name} does not match its vectors")
        vector = model.embed([text])[0]
        if not vector.any():
            raise LookupError(f"none of the words of {text!r} occur in the dataset")
        return vector
    if space.method == "provided":
        raise LookupError(
            f"the vectors of {space.name} came with the import: search it from a sample, or "
            "compute a space Loupe can embed text into"
        )
    if space.method == "tfidf-svd":
        raise LookupError(
            f"{space.name} was computed before Loupe kept the model that embeds free text"
        )
    raise LookupError(f"{space.name} ({space.method}) cannot embed free text")


def similar_samples(
    dataset: Dataset,
    sample_id: int,
    *,
    space: str | None = None,
    limit: int = 10,
    min_similarity: float | None = None,
) -> list[dict]:
    """The sample's nearest neighbours (itself excluded); LookupError when it has no vector."""
    found = embedding_space(dataset, space)
    if found is None:
        raise LookupError(
            f"no embedding space named {space!r}" if space else "the dataset has no embeddings"
        )
    vector = (
        Embedding.objects.filter(space=found, sample_id=sample_id, sample__dataset=dataset)
        .values_list("vector", flat=True)
        .first()
    )
    if vector is None:
        raise LookupError(f"sample {sample_id} has no embedding in {found.name}")
    return nearest_to_vector(
        found, vector, limit=limit, min_similarity=min_similarity, exclude=sample_id
    )


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
    from apps.datasets.query import apply

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
    from apps.datasets.query import QueryError, check_ordering

    name, descending = check_ordering(ordering, run)
    score = name != "id"
    samples = samples_matching(
        dataset, query=query, run=run, removed=removed, extra_scores={name} if score else ()
    )
    if score:
        # The score table's own sample column, so the (run, score, sample) index serves both
        # the order and the cursor's row comparison.
        samples = samples.filter(**{f"score_{name}__isnull": False}).annotate(
            score_key=F("run_score__sample_id")
        )
        keys: tuple[str, ...] = (f"score_{name}", "score_key")
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


def samples_chosen(
    dataset: Dataset, *, query, run, ordering: str = "", ids=None, samples=None, limit: int
) -> list[Sample]:
    """What a review session or relabel batch is made of: the given `samples` of the dataset (a
    rule's matches), or the first `limit` matches of the query in its ordering, narrowed to `ids`
    when given. A bad query is a ValidationError on "query"."""
    from django.core.exceptions import ValidationError

    from apps.datasets.query import QueryError

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
    from apps.datasets.query import RowCompare

    if len(keys) == 1:
        return Q(**{f"{keys[0]}__{'lt' if desc else 'gt'}": values[0]})
    return Q(RowCompare([F(k) for k in keys], [Value(v) for v in values], "<" if desc else ">"))


def _encode_cursor(position: dict) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict:
    import base64
    import binascii

    from apps.config.parsers import json_loads, storable_text
    from apps.datasets.query import QueryError

    try:
        position = json_loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise QueryError("cursor", "is not a valid cursor") from None
    if not isinstance(position, dict) or not storable_text(position):
        raise QueryError("cursor", "is not a valid cursor")
    return position


def _estimated_count(samples: QuerySet) -> int:
    """The planner's row estimate for the query (EXPLAIN, nothing is read)."""
    import json

    plan = json.loads(samples.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def scores_of_samples(run, sample_ids) -> dict[int, dict]:
    """The run's scores of these samples, by sample id."""
    from apps.quality.models import SampleScore

    if run is None:
        return {}
    rows = SampleScore.objects.filter(run=run, sample_id__in=list(sample_ids)).values(
        "sample_id", *SCORE_COLUMNS
    )
    return {row.pop("sample_id"): row for row in rows}


def tags_of_samples(sample_ids) -> dict[int, list[str]]:
    from apps.datasets.models import SampleTag

    found: dict[int, list[str]] = {}
    rows = SampleTag.objects.filter(sample_id__in=list(sample_ids)).values_list(
        "sample_id", "tag__name"
    )
    for sample_id, name in rows.order_by("tag__name"):
        found.setdefault(sample_id, []).append(name)
    return found


def tags_of_dataset(dataset: Dataset) -> QuerySet:
    from apps.datasets.models import SampleTag

    tagged = SampleTag.objects.filter(tag=OuterRef("pk")).order_by().values("tag")
    return dataset.tags.annotate(
        samples=Coalesce(Subquery(tagged.annotate(n=Count("*")).values("n")), 0)
    ).order_by("name")


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


def exploration(dataset: Dataset, params) -> Exploration:
    """Read `q` (JSON), `view` (a saved view's id, whose query and ordering `q` and `ordering`
    override), `run` (default: the newest finished one), `ordering`, `removed`, and the plain
    filters of older links (see query.simple_filters), which join the query. QueryError if bad."""
    from apps.datasets.query import (
        QueryError,
        check_ordering,
        joined,
        parse,
        parts_of,
        simple_filters,
    )
    from apps.quality.models import RunStatus
    from apps.quality.selectors import latest_done_run

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
    ordering = params.get("ordering") or (view.ordering if view else "") or "id"
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
    return Exploration(query=query, run=run, ordering=ordering, view=view, removed=removed)


def steps_in_query(
    dataset: Dataset, sample: Sample, *, query, run, ordering: str, removed: bool = False
) -> tuple[int | None, int | None]:
    """The ids before and after the sample in the table it was opened from (same query and
    ordering), for next/previous on the sample page."""
    from apps.datasets.query import QueryError, check_ordering

    try:
        name, _descending = check_ordering(ordering, run)
    except QueryError:
        return None, None
    if name == "id":
        at = [sample.pk]
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


# --- Media ---------------------------------------------------------------------------------------


def media_folder(dataset: Dataset) -> str:
    """The folder of media storage that holds the dataset's images, and nothing else of it."""
    return f"datasets/{dataset.pk}/media"


def media_path(dataset: Dataset, image: str) -> str:
    """Where an image of the dataset lives in media storage; ValueError for a path that would
    lead out of the dataset's media folder."""
    from apps.datasets.importing.values import image_path

    return f"{media_folder(dataset)}/{image_path(image)}"


def media_open(dataset: Dataset, image: str):
    """A binary stream of one of the dataset's images, or None when `image` is not a file inside
    the dataset's own media folder. On local storage the check is made on the real path, links
    resolved, and that resolved file is what is opened: a link planted in the folder, or a
    stored path with '..', reads nothing outside it."""
    from pathlib import Path

    from django.core.files.storage import default_storage

    try:
        name = media_path(dataset, image)
    except ValueError:
        return None
    try:
        real = Path(default_storage.path(name)).resolve()
        folder = Path(default_storage.path(media_folder(dataset))).resolve()
    except NotImplementedError:
        # Object storage has no links and takes keys literally: the normal form is the check.
        try:
            return default_storage.open(name, "rb")
        except FileNotFoundError:
            return None
    if not real.is_relative_to(folder) or not real.is_file():
        return None
    return real.open("rb")
