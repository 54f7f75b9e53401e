"""Reads for datasets: what a user may see, versions and their differences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Count, Func, JSONField, Max, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce
from pgvector import Vector

from apps.datasets.importing.preview import FilePreview, header_of, preview_file
from apps.datasets.importing.values import image_path
from apps.datasets.models import (
    Dataset,
    DatasetVersion,
    Embedding,
    EmbeddingSpace,
    ImportJob,
    LabelEvent,
    Sample,
    SampleTag,
    Upload,
)
from workers.engine import embeddings as kernels


def datasets_of_project(project) -> QuerySet[Dataset]:
    return Dataset.objects.filter(project=project).order_by("name", "id")


def datasets_with_counts(project) -> QuerySet[Dataset]:
    """The project's datasets with their active sample count and newest version number."""
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


def draft_of_samples(dataset: Dataset, sample_ids) -> dict[int, dict]:
    """The pending (not yet committed) change of each of these samples that has one: its new
    label, or its removal."""
    rows = LabelEvent.objects.filter(
        dataset=dataset, version=None, sample_id__in=list(sample_ids)
    ).values("sample_id", "label", "removed")
    return {row["sample_id"]: dict(row) for row in rows}


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


def metadata_sort_value(key: str) -> Func:
    """What the table sorts by for `metadata.KEY`: the value as JSON (numbers by number,
    strings by text, in jsonb's order), NULL where missing or a JSON null. A sort index on a
    key (SortIndex) is built on this very expression, so the planner can match them."""
    return Func(
        KeyTransform(key, "metadata"),
        template="NULLIF(%(expressions)s, 'null'::jsonb)",
        output_field=JSONField(),
    )


# The candidate list of a page read. With pgvector's default (40), pages of random 384-d vectors
# at 1,000,000 rows held few of the samples a search for 1,000 ranks first; a wider list finds
# more of the true nearest at a few milliseconds' cost.
PAGE_EF_SEARCH = 200


def nearest_in_order(
    space: EmbeddingSpace,
    vector,
    *,
    limit: int,
    exclude: int | None = None,
    after: tuple[float, int] | None = None,
) -> list[tuple[int, float]]:
    """(sample id, cosine similarity) of up to `limit` active samples, nearest first, read from
    the space's HNSW index in its own order: what a page of a similarity search needs, and no
    more. `after` (similarity, id) starts past that sample in the order (similarity, id) both
    descending. No threshold in SQL: the caller stops at the first sample below it, where the
    index scan would go on looking for matches that cannot come.

    The scan is pgvector's iterative one in strict order, so the similarities come out
    non-increasing; samples with the same similarity come in no particular order."""
    dim = int(space.dimension)
    distance = f"(e.vector::vector({dim}) <=> %(q)s::vector({dim}))"
    where = ""
    if exclude is not None:
        where += " AND e.sample_id <> %(exclude)s"
    if after is not None:
        where += f" AND (1 - {distance}, e.sample_id) < (%(s)s::float8, %(id)s::bigint)"
    # The space id is part of the partial index's predicate, so it is written in, not bound.
    sql = f"""
        SELECT e.sample_id, 1 - {distance} AS similarity
        FROM datasets_embedding e JOIN datasets_sample s ON s.id = e.sample_id AND s.active
        WHERE e.space_id = {int(space.pk)}{where}
        ORDER BY {distance} LIMIT %(limit)s
    """  # noqa: S608 - only integers are formatted in
    params: dict[str, Any] = {
        "q": Vector(vector).to_text(),
        "limit": int(limit),
        "exclude": exclude,
        "s": None if after is None else float(after[0]),
        "id": None if after is None else int(after[1]),
    }
    with transaction.atomic(durable=False), connection.cursor() as cur:
        cur.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        cur.execute(f"SET LOCAL hnsw.ef_search = {max(PAGE_EF_SEARCH, min(int(limit), 1000))}")
        cur.execute(sql, params)
        return [(int(row[0]), float(row[1])) for row in cur.fetchall()]


def text_model_path(space: EmbeddingSpace) -> str:
    """Where the fitted model that embeds free text into a computed space lives."""
    return f"datasets/{space.dataset_id}/embedding-models/space-{space.pk}.npz"


def embed_texts(space: EmbeddingSpace, texts: Sequence[str]) -> np.ndarray:
    """Vectors of free texts in the space, float32, one row a text: MiniLM (the `embed` extra)
    or the space's own fitted LSA model, whose row is zero for a text with none of its words.
    LookupError, saying why, when the space cannot embed text."""

    if space.method == "minilm":
        try:
            return kernels.text_minilm(texts)
        except kernels.EmbeddingUnavailable as exc:
            raise LookupError(str(exc)) from None
    if space.method == "tfidf-svd" and default_storage.exists(text_model_path(space)):
        with default_storage.open(text_model_path(space), "rb") as f:
            model = kernels.TextLSA.from_bytes(f.read())
        if model.components.shape[0] != space.dimension:
            raise LookupError(f"the text model of {space.name} does not match its vectors")
        return model.embed(texts)
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


_EMBEDDED: dict[tuple[int, str, str], np.ndarray] = {}  # the last texts embedded, in order
_EMBEDDED_KEPT = 64


def embed_text(space: EmbeddingSpace, text: str) -> np.ndarray:
    """The vector of one free text in the space (see embed_texts); LookupError also when the
    text has no direction there (none of its words are known). The last few are kept in the
    process: each page of a `similar_text` search asks for the same text again."""
    key = (int(space.pk), str(space.method), text)
    vector = _EMBEDDED.pop(key, None)
    if vector is None:
        vector = embed_texts(space, [text])[0]
        vector.setflags(write=False)
    _EMBEDDED[key] = vector
    while len(_EMBEDDED) > _EMBEDDED_KEPT:
        _EMBEDDED.pop(next(iter(_EMBEDDED)))
    if not vector.any():
        raise LookupError(f"none of the words of {text!r} occur in the dataset")
    return vector


def sample_vector(
    dataset: Dataset, sample_id: int, *, space: str | None = None
) -> tuple[EmbeddingSpace, Any]:
    """The embedding space (by name; default: the dataset's first) and the sample's vector in
    it; LookupError, saying which, when there is none."""
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
    return found, vector


def similar_samples(
    dataset: Dataset,
    sample_id: int,
    *,
    space: str | None = None,
    limit: int = 10,
    min_similarity: float | None = None,
) -> list[dict]:
    """The sample's nearest neighbours (itself excluded); LookupError when it has no vector."""
    found, vector = sample_vector(dataset, sample_id, space=space)
    return nearest_to_vector(
        found, vector, limit=limit, min_similarity=min_similarity, exclude=sample_id
    )


def tags_of_samples(sample_ids) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    rows = SampleTag.objects.filter(sample_id__in=list(sample_ids)).values_list(
        "sample_id", "tag__name"
    )
    for sample_id, name in rows.order_by("tag__name"):
        found.setdefault(sample_id, []).append(name)
    return found


def tags_of_dataset(dataset: Dataset) -> QuerySet:
    tagged = SampleTag.objects.filter(tag=OuterRef("pk")).order_by().values("tag")
    return dataset.tags.annotate(
        samples=Coalesce(Subquery(tagged.annotate(n=Count("*")).values("n")), 0)
    ).order_by("name")


# --- Media ---------------------------------------------------------------------------------------


def media_folder(dataset: Dataset) -> str:
    """The folder of media storage that holds the dataset's images, and nothing else of it."""
    return f"datasets/{dataset.pk}/media"


def media_path(dataset: Dataset, image: str) -> str:
    """Where an image of the dataset lives in media storage; ValueError for a path that would
    lead out of the dataset's media folder."""
    return f"{media_folder(dataset)}/{image_path(image)}"


def media_open(dataset: Dataset, image: str):
    """A binary stream of one of the dataset's images, or None when `image` is not a file inside
    the dataset's own media folder. On local storage the check is made on the real path, links
    resolved, and that resolved file is what is opened: a link planted in the folder, or a
    stored path with '..', reads nothing outside it."""
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


def upload_preview(upload: Upload, fmt: str) -> FilePreview:
    """The first rows of an upload kept whole, as its import will read them."""
    return preview_file(str(upload.path), fmt)


def upload_header(upload: Upload, fmt: str) -> list[str]:
    with upload.path.open("rb") as stream:
        return header_of(stream, fmt)
