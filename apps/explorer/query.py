"""The sample query language: a JSON predicate over an allow-list of fields, turned into SQL.

    {"all": [...]}   {"any": [...]}   {"not": {...}}
    {"field": F, "op": OP, "value": V}
    {"similar_to": SAMPLE_ID, "min_similarity": 0.9}
    {"similar_text": "free text", "min_similarity": 0.25}
    {"within": [[x, y], ...]}          the run's 2D map, inside a polygon (a lasso)

The table, the API, saved views, review sessions and rules all go through `compile_query`.
A query with a similarity condition annotates each match's cosine `similarity` to what it was
compared with (the first such condition's), and can be ordered by it, nearest first.
Only the fields of FIELDS and `metadata.KEY` can be named: nothing else of the database is
reachable, whatever the JSON says (no Django lookups are built from user strings). Logic is
two-valued: a condition on a missing value (no score, no label, no such metadata key) is
false, and `not` is its complement, so `!=` also matches samples without the value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import (
    BooleanField,
    Exists,
    F,
    FilteredRelation,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from pgvector.django import CosineDistance

from apps.config.parsers import JSONTooDeep, json_loads, storable_text
from apps.datasets.models import Dataset, Embedding, EmbeddingSpace, Sample, SampleTag, Split, Tag
from apps.datasets.selectors import (
    embed_text,
    embedding_space,
    nearest_to_vector,
    sample_vector,
)
from apps.quality.models import Flag, ScoringRun

OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "contains")
MAX_DEPTH = 12
MAX_CONDITIONS = 200
MAX_IN_VALUES = 10_000
MAX_POLYGON = 2_000
# Map coordinates are a projection's, within a few hundred of 0; PostgreSQL's point-in-polygon
# multiplies them and overflows near 1e154.
MAX_COORDINATE = 1e9
SIMILAR_LIMIT = 1_000  # the most samples a similar_to or similar_text condition matches
# A few words against a whole message: cosine similarities run lower than sample to sample.
TEXT_SIMILARITY = 0.25

TEXT_OPS = ("=", "!=", "in", "contains")
CHOICE_OPS = ("=", "!=", "in")
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=", "in")
LIST_OPS = ("contains", "in")
TIME_OPS = ("=", "!=", "<", "<=", ">", ">=")


# Constants, not Q(): an empty Q() is dropped when combined, so `any` of it would not match.
ALWAYS = Q(Value(True, output_field=BooleanField()))
NEVER = Q(Value(False, output_field=BooleanField()))


@dataclass(frozen=True)
class Field:
    kind: str  # text, choice, number, integer, bool, list
    column: str  # the Sample column, or the run's score column (score=True)
    ops: tuple[str, ...]
    score: bool = False
    help: str = ""


FIELDS: dict[str, Field] = {
    "label": Field("label", "label", CHOICE_OPS, help="the given label (null: unlabelled)"),
    "suggested_label": Field("label", "suggested_label", CHOICE_OPS, score=True),
    "split": Field("choice", "split", CHOICE_OPS, help=", ".join(Split.values)),
    "likely_mislabeled": Field("bool", "likely_mislabeled", ("=", "!="), score=True),
    "flags": Field("list", "flags", LIST_OPS, score=True, help=", ".join(Flag.values)),
    "mislabel_score": Field("number", "mislabel_score", NUMBER_OPS, score=True),
    "error_potential": Field("number", "error_potential", NUMBER_OPS, score=True),
    "margin": Field("number", "margin", NUMBER_OPS, score=True),
    "outlier_score": Field("number", "outlier_score", NUMBER_OPS, score=True),
    "knn_agreement": Field("number", "knn_agreement", NUMBER_OPS, score=True),
    "coverage": Field("number", "coverage", NUMBER_OPS, score=True),
    "cluster": Field("integer", "cluster", NUMBER_OPS, score=True),
    "duplicate_group": Field("integer", "duplicate_group", NUMBER_OPS, score=True),
    "tags": Field("list", "tags", LIST_OPS, help="tags on the sample"),
    "text": Field("text", "text", TEXT_OPS, help="the sample's text"),
    "external_id": Field("text", "external_id", TEXT_OPS, help="the sample's id"),
    "observed_at": Field(
        "time",
        "observed_at",
        TIME_OPS,
        help="when a production sample was seen: ISO 8601 with a timezone (null: never)",
    ),
    "x": Field("number", "x", NUMBER_OPS, score=True, help="the 2D map"),
    "y": Field("number", "y", NUMBER_OPS, score=True, help="the 2D map"),
}
METADATA = "metadata."
METADATA_OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "contains")
# Orderings: the sample id, a score of the run (highest first with "-"; scores sort through an
# index on (run, score, sample) each), or a column of the sample; `metadata.KEY` too.
SCORE_ORDERINGS = tuple(name for name, f in FIELDS.items() if f.kind == "number" and f.score)
# Sorted by their value, then id; samples without one (no label, no such metadata key) last.
VALUE_ORDERINGS = ("label", "split", "external_id")
ORDERINGS = ("id", *SCORE_ORDERINGS, *VALUE_ORDERINGS)
SIMILARITY = "similarity"  # an ordering too, for a query with a similarity condition
MAX_METADATA_KEY = 200  # characters of a metadata key a column or an ordering names


class QueryError(ValueError):
    """A query that cannot be run; `path` points at the bad part, e.g. `all[1].op`."""

    def __init__(self, path: str, message: str):
        self.path = path or "query"
        super().__init__(f"{self.path}: {message}")


def _time(value: Any, name: str, path: str) -> datetime:
    """An aware datetime in UTC from an ISO 8601 string with a timezone (in UTC because
    PostgreSQL refuses offsets Python accepts, beyond 15:59)."""
    try:
        parsed = datetime.fromisoformat(value.strip()) if isinstance(value, str) else None
        if parsed is not None and parsed.utcoffset() is not None:
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise QueryError(
        path, f"{name} is a time: give ISO 8601 with a timezone, e.g. 2025-11-03T00:00:00Z"
    )


def parse(text: str | None) -> Any:
    """The query of a URL parameter: JSON text, empty for "everything"."""
    if text is None or not text.strip():
        return {}
    try:
        return json_loads(text)
    except json.JSONDecodeError as exc:
        raise QueryError("query", f"is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except JSONTooDeep as exc:
        raise QueryError("query", str(exc)) from None


@dataclass
class Compiled:
    """What a query needs of the queryset: a filter, and the score columns it reads."""

    condition: Q
    scores: set[str]
    # The embedding space and vector of the query's first similarity condition.
    similarity: tuple[EmbeddingSpace, Any] | None = None


@dataclass(frozen=True)
class Similarity:
    """A similarity condition, checked but not yet searched: what to compare with, how close."""

    space: EmbeddingSpace
    vector: Any
    min_similarity: float
    exclude: int | None  # the sample compared with (similar_to), not its own neighbour


class _Compiler:
    def __init__(self, dataset: Dataset, run: ScoringRun | None, *, search: bool = True):
        self.dataset = dataset
        self.run = run
        self.scores: set[str] = set()
        self.similarity: tuple[EmbeddingSpace, Any] | None = None
        self.search = search  # False: similarity conditions are checked, not searched
        self.checked: list[Similarity] = []
        self.count = 0

    def neighbours(self, found: Similarity) -> Q:
        """The SIMILAR_LIMIT nearest samples at least that similar, by the HNSW index."""
        self.similarity = self.similarity or (found.space, found.vector)
        self.checked.append(found)
        if not self.search:
            return ALWAYS
        rows = nearest_to_vector(
            found.space,
            found.vector,
            limit=SIMILAR_LIMIT,
            min_similarity=found.min_similarity,
            exclude=found.exclude,
        )
        return Q(pk__in=[row["id"] for row in rows])

    def node(self, node: Any, path: str, depth: int) -> Q:
        if depth > MAX_DEPTH:
            raise QueryError(path, f"nests deeper than {MAX_DEPTH} levels")
        if not isinstance(node, dict):
            raise QueryError(path, 'must be an object such as {"field": …, "op": …, "value": …}')
        self.count += 1
        if self.count > MAX_CONDITIONS:
            raise QueryError(path, f"the query has more than {MAX_CONDITIONS} parts")
        keys = set(node)
        for group in ("all", "any"):
            if group in node:
                _only(node, {group}, path)
                items = node[group]
                if not isinstance(items, list):
                    raise QueryError(f"{_join(path, group)}", "must be a list of conditions")
                parts = [
                    self.node(x, f"{_join(path, group)}[{i}]", depth + 1)
                    for i, x in enumerate(items)
                ]
                if not parts:
                    return ALWAYS if group == "all" else NEVER
                result = parts[0]
                for part in parts[1:]:
                    result = (result & part) if group == "all" else (result | part)
                return result
        if "not" in node:
            _only(node, {"not"}, path)
            return ~self.node(node["not"], _join(path, "not"), depth + 1)
        if "similar_to" in node:
            _only(node, {"similar_to", "min_similarity", "space"}, path)
            return self.similar(node, path)
        if "similar_text" in node:
            _only(node, {"similar_text", "min_similarity", "space"}, path)
            return self.similar_text(node, path)
        if "within" in node:
            _only(node, {"within"}, path)
            return self.within(node["within"], _join(path, "within"))
        if "field" in keys:
            _only(node, {"field", "op", "value"}, path)
            return self.condition(node, path)
        if not keys:
            return ALWAYS
        raise QueryError(
            path,
            f"unknown key {sorted(keys)[0]!r}: use all, any, not, field/op/value, similar_to, "
            "similar_text or within",
        )

    # --- conditions ------------------------------------------------------------------------

    def condition(self, node: dict, path: str) -> Q:
        name, op = node.get("field"), node.get("op")
        if "op" not in node:
            raise QueryError(path, 'needs an "op"')
        if "value" not in node:
            raise QueryError(path, 'needs a "value"')
        value = node["value"]
        if not isinstance(name, str):
            raise QueryError(_join(path, "field"), "must be a field name")
        if isinstance(name, str) and name.startswith(METADATA):
            return self.metadata(name[len(METADATA) :], op, value, path)
        field = FIELDS.get(name)
        if field is None:
            raise QueryError(
                _join(path, "field"),
                f"unknown field {name!r}; fields are {', '.join(FIELDS)} and metadata.KEY",
            )
        if op not in field.ops:
            raise QueryError(
                _join(path, "op"),
                f"{op!r} does not apply to {name}; use {', '.join(field.ops)}",
            )
        vpath = _join(path, "value")
        if field.score:
            if self.run is None:
                raise QueryError(
                    _join(path, "field"),
                    f"{name} is a score, and the dataset has no finished scoring run",
                )
            self.scores.add(field.column)
            column = f"score_{field.column}"
        else:
            column = field.column
        if field.kind == "list":
            return self.list_condition(name, field, op, value, vpath)
        if op == "in":
            values = _list(value, vpath)
            checked = [self.value(name, field, v, f"{vpath}[{i}]") for i, v in enumerate(values)]
            known = [v for v in checked if v is not None]
            result = (
                Q(**{f"{column}__in": known}) & Q(**{f"{column}__isnull": False})
                if known
                else NEVER
            )
            if None in checked:
                result |= Q(**{f"{column}__isnull": True})
            return result
        checked = self.value(name, field, value, vpath, op=op)
        if op in ("=", "!="):
            equal = (
                Q(**{f"{column}__isnull": True})
                if checked is None
                else Q(**{column: checked}) & Q(**{f"{column}__isnull": False})
            )
            return equal if op == "=" else ~equal
        if op == "contains":
            return Q(**{f"{column}__icontains": checked}) & Q(**{f"{column}__isnull": False})
        lookup = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}[op]
        return Q(**{f"{column}__{lookup}": checked}) & Q(**{f"{column}__isnull": False})

    def value(self, name: str, field: Field, value: Any, path: str, op: str = "=") -> Any:
        kind = field.kind
        if value is None:
            if op in ("=", "!=", "in"):
                return None
            raise QueryError(path, f"{op} needs a value, not null")
        if kind in ("text", "label", "choice"):
            if not isinstance(value, str):
                raise QueryError(path, f"{name} is text: give a string")
            if kind == "choice" and value not in Split.values:
                raise QueryError(
                    path, f"{value!r} is not a split; splits are {', '.join(Split.values)}"
                )
            if kind == "label" and op != "contains" and value not in self.dataset.labels:
                raise QueryError(
                    path,
                    f"{value!r} is not a label of this dataset; labels are {', '.join(self.dataset.labels)}",
                )
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise QueryError(path, f"{name} is true or false")
            return value
        if kind == "time":
            return _time(value, name, path)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise QueryError(path, f"{name} is a number: give a finite number")
        if kind == "integer" and op in ("=", "!=", "in") and not float(value).is_integer():
            raise QueryError(path, f"{name} is a whole number")
        return value

    def list_condition(self, name: str, field: Field, op: str, value: Any, path: str) -> Q:
        values = [value] if op == "contains" else _list(value, path)
        for i, v in enumerate(values):
            where = path if op == "contains" else f"{path}[{i}]"
            if not isinstance(v, str):
                raise QueryError(where, f"{name} are names: give a string")
            if name == "flags" and v not in Flag.values:
                raise QueryError(where, f"{v!r} is not a flag; flags are {', '.join(Flag.values)}")
        if not values:
            return NEVER
        if name == "tags":
            # Tag ids are looked up first: the planner then sees (tag, sample) keys it has
            # statistics for, and probes the primary key.
            tag_ids = list(
                Tag.objects.filter(dataset=self.dataset, name__in=values).values_list(
                    "pk", flat=True
                )
            )
            if not tag_ids:
                return NEVER
            return Q(Exists(SampleTag.objects.filter(tag_id__in=tag_ids, sample=OuterRef("pk"))))
        # flags: the run's array holds any of them
        return Q(score_flags__overlap=values) & Q(score_flags__isnull=False)

    def metadata(self, key: str, op: Any, value: Any, path: str) -> Q:
        if not key:
            raise QueryError(_join(path, "field"), "metadata. needs a key, e.g. metadata.channel")
        if op not in METADATA_OPS:
            raise QueryError(
                _join(path, "op"), f"{op!r} is not an operator; use {', '.join(METADATA_OPS)}"
            )
        vpath = _join(path, "value")
        item = KeyTransform(key, "metadata")
        if op == "in":
            values = _list(value, vpath)
            for i, v in enumerate(values):
                _json_scalar(v, f"{vpath}[{i}]")
            result = NEVER
            for v in values:
                result |= _json_equal(key, v)
            return result
        if op in ("=", "!="):
            _json_scalar(value, vpath)
            equal = _json_equal(key, value)
            return equal if op == "=" else ~equal
        if op == "contains":
            if not isinstance(value, str):
                raise QueryError(vpath, "contains needs a string")
            return Q(_JSONTypeIs(item, Value("string"))) & Q(
                _ILike(KeyTextTransform(key, "metadata"), Value(_like(value)))
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise QueryError(vpath, f"{op} compares numbers: give a finite number")
        number = _JSONNumber(item)
        lookup = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}[op]
        return Q(_Compare(number, Value(float(value)), op=lookup))

    # --- vectors and the map ---------------------------------------------------------------

    def similar(self, node: dict, path: str) -> Q:
        sample_id = node["similar_to"]
        if isinstance(sample_id, bool) or not isinstance(sample_id, int):
            raise QueryError(_join(path, "similar_to"), "must be a sample id (a whole number)")
        minimum = node.get("min_similarity", 0.9)
        if (
            isinstance(minimum, bool)
            or not isinstance(minimum, int | float)
            or not -1 <= minimum <= 1
        ):
            raise QueryError(_join(path, "min_similarity"), "must be a number from -1 to 1")
        space = node.get("space")
        if space is not None and not isinstance(space, str):
            raise QueryError(_join(path, "space"), "must be the name of an embedding space")
        try:
            found_space, vector = sample_vector(self.dataset, sample_id, space=space)
        except LookupError as exc:
            raise QueryError(_join(path, "similar_to"), str(exc)) from None
        return self.neighbours(Similarity(found_space, vector, float(minimum), sample_id))

    def similar_text(self, node: dict, path: str) -> Q:
        text = node["similar_text"]
        if not isinstance(text, str) or not text.strip() or len(text) > 2000:
            raise QueryError(_join(path, "similar_text"), "must be text of 1 to 2,000 characters")
        minimum = node.get("min_similarity", TEXT_SIMILARITY)
        if (
            isinstance(minimum, bool)
            or not isinstance(minimum, int | float)
            or not -1 <= minimum <= 1
        ):
            raise QueryError(_join(path, "min_similarity"), "must be a number from -1 to 1")
        space = embedding_space(
            self.dataset, node.get("space") if isinstance(node.get("space"), str) else None
        )
        if space is None:
            raise QueryError(_join(path, "space"), "the dataset has no such embedding space")
        try:
            vector = embed_text(space, text)
        except LookupError as exc:
            raise QueryError(_join(path, "similar_text"), str(exc)) from None
        return self.neighbours(Similarity(space, vector, float(minimum), None))

    def within(self, polygon: Any, path: str) -> Q:
        if self.run is None:
            raise QueryError(path, "the map needs a finished scoring run")
        if not isinstance(polygon, list) or not 3 <= len(polygon) <= MAX_POLYGON:
            raise QueryError(path, f"must be a list of 3 to {MAX_POLYGON} [x, y] points")
        points = []
        for i, point in enumerate(polygon):
            if (
                not isinstance(point, list)
                or len(point) != 2
                or not all(
                    isinstance(c, int | float)
                    and not isinstance(c, bool)
                    and math.isfinite(c)
                    and abs(c) <= MAX_COORDINATE
                    for c in point
                )
            ):
                raise QueryError(
                    f"{path}[{i}]",
                    f"must be an [x, y] pair of numbers from -{MAX_COORDINATE:g} to {MAX_COORDINATE:g}",
                )
            points.append(f"({float(point[0])!r},{float(point[1])!r})")
        self.scores.update({"x", "y"})
        return Q(_InPolygon(F("score_x"), F("score_y"), Value("(" + ",".join(points) + ")")))


def compile_query(dataset: Dataset, run: ScoringRun | None, query: Any) -> Compiled:
    # Checked once for the whole query: its text reaches SQL as keys, values and patterns.
    if not storable_text(query):
        raise QueryError("query", "text cannot hold NUL characters or lone surrogates")
    compiler = _Compiler(dataset, run)
    condition = compiler.node(query if query is not None else {}, "", 0)
    return Compiled(condition, compiler.scores, compiler.similarity)


def ranked_similarity(dataset: Dataset, query: Any) -> Similarity | None:
    """The similarity condition of a query that is one and nothing else (alone, or the only
    part of an `all`), checked but not searched: such a query, nearest first, pages through
    the index a page at a time (see selectors.sample_page). None for any other query. A bad
    condition is a QueryError, as compile_query would raise."""
    node = query
    if isinstance(node, dict) and set(node) == {"all"} and isinstance(node["all"], list):
        node = node["all"][0] if len(node["all"]) == 1 else None
    if not isinstance(node, dict) or not ({"similar_to", "similar_text"} & set(node)):
        return None
    if not storable_text(query):
        raise QueryError("query", "text cannot hold NUL characters or lone surrogates")
    compiler = _Compiler(dataset, None, search=False)
    compiler.node(query, "", 0)
    return compiler.checked[0]


def check_ordering(ordering: str | None, run: ScoringRun | None) -> tuple[str, bool]:
    """The ordering field and whether it is descending; "-mislabel_score" is highest first,
    "-similarity" nearest first (for a query with a similarity condition: see sample_page),
    "label" or "metadata.KEY" by that value, samples without it last either way."""
    ordering = (ordering or "id").strip()
    descending = ordering.startswith("-")
    name = ordering.lstrip("-")
    if name.startswith(METADATA):
        key = name[len(METADATA) :]
        if not key or len(key) > MAX_METADATA_KEY or "\x00" in key:
            raise QueryError(
                "ordering", f"{name!r}: a metadata key of 1 to {MAX_METADATA_KEY} characters"
            )
        return name, descending
    if name not in ORDERINGS and name != SIMILARITY:
        known = ", ".join((*ORDERINGS, SIMILARITY))
        raise QueryError("ordering", f"{name!r} cannot be sorted by; use {known} or metadata.KEY")
    if name in SCORE_ORDERINGS and run is None:
        raise QueryError(
            "ordering", f"{name} is a score, and the dataset has no finished scoring run"
        )
    return name, descending


def has_similarity(query: Any) -> bool:
    """Whether a query holds a similar_to or similar_text condition (at any depth)."""
    if isinstance(query, dict):
        return (
            "similar_to" in query
            or "similar_text" in query
            or any(has_similarity(v) for k, v in query.items() if k in ("all", "any", "not"))
        )
    return isinstance(query, list) and any(has_similarity(part) for part in query)


def apply(
    samples: QuerySet[Sample],
    dataset: Dataset,
    run: ScoringRun | None,
    query: Any,
    *,
    extra_scores: set[str] | tuple[str, ...] = (),
) -> QuerySet[Sample]:
    """`samples` narrowed by the query, with the run's scores it reads as `score_<name>`, and
    the `similarity` of each to the query's first similarity condition when it has one."""
    compiled = compile_query(dataset, run, query)
    scores = compiled.scores | set(extra_scores)
    if scores and run is not None:
        samples = samples.annotate(
            run_score=FilteredRelation("scores", condition=Q(scores__run_id=run.pk))
        ).annotate(**{f"score_{name}": F(f"run_score__{name}") for name in sorted(scores)})
    if compiled.similarity is not None:
        space, vector = compiled.similarity
        # Exact cosine similarity of each match (a thousand at most): what the search ranked by.
        vectors = Embedding.objects.filter(space=space, sample_id=OuterRef("pk"))
        samples = samples.annotate(
            similarity=Subquery(
                vectors.annotate(s=1.0 - CosineDistance("vector", vector)).values("s")[:1],
                output_field=FloatField(),
            )
        )
    return samples.filter(compiled.condition)


# --- The table's filter chips: conditions in and out of a query, in words -----------------------


def parts_of(query: Any) -> list:
    """The top-level conditions of a query, each a chip the table can remove."""
    if not query:
        return []
    if isinstance(query, dict) and set(query) == {"all"} and isinstance(query["all"], list):
        return list(query["all"])
    return [query]


def joined(parts: list) -> dict:
    """The query of these conditions, all of them."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"all": parts}


def describe(node: Any) -> str:
    """A condition in words, for a chip: `mislabel score > 0.5`, `text contains "refund"`."""
    if not isinstance(node, dict) or not node:
        return "everything"
    if "all" in node:
        return " and ".join(f"({describe(n)})" for n in node["all"]) or "everything"
    if "any" in node:
        return " or ".join(f"({describe(n)})" for n in node["any"]) or "nothing"
    if "not" in node:
        return f"not ({describe(node['not'])})"
    if "similar_to" in node:
        return f"similar to sample {node['similar_to']} (≥ {node.get('min_similarity', 0.9)})"
    if "similar_text" in node:
        return f"like “{node['similar_text']}” (≥ {node.get('min_similarity', TEXT_SIMILARITY)})"
    if "within" in node:
        return f"inside a selection on the map ({len(node['within'])} corners)"
    field = str(node.get("field", "")).replace("_", " ")
    value = node.get("value")
    if isinstance(value, list):
        shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in value[:5])
        shown = f"[{shown}, … {len(value)} values]" if len(value) > 5 else f"[{shown}]"
    elif value is None:
        shown = "none"
    else:
        shown = json.dumps(value, ensure_ascii=False)
    return f"{field} {node.get('op')} {shown}"


def condition_from_form(field: str, op: str, raw: str) -> dict:
    """A condition from the table's "add a filter" form, its value read as the field's type:
    numbers for scores, true/false, `none` for a missing label, commas between `in` values."""
    field, op, raw = (field or "").strip(), (op or "").strip(), (raw or "").strip()
    kind = FIELDS[field].kind if field in FIELDS else "metadata"
    if field == "metadata.":
        raise QueryError("field", "metadata. needs a key, e.g. metadata.channel")

    def one(text: str):
        if kind in ("number", "integer"):
            try:
                return float(text) if not text.lstrip("-").isdigit() else int(text)
            except ValueError:
                raise QueryError("value", f"{field} is a number, not {text!r}") from None
        if kind == "bool":
            if text.lower() not in ("true", "false", "yes", "no"):
                raise QueryError("value", f"{field} is true or false")
            return text.lower() in ("true", "yes")
        if kind == "label" and text.lower() == "none":
            return None
        if kind == "metadata":
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return text
            return value if isinstance(value, int | float | bool) or value is None else text
        return text

    if op == "in" and kind != "list":
        return {
            "field": field,
            "op": op,
            "value": [one(x.strip()) for x in raw.split(",") if x.strip()],
        }
    if op == "in":
        return {"field": field, "op": op, "value": [x.strip() for x in raw.split(",") if x.strip()]}
    return {"field": field, "op": op, "value": one(raw)}


def simple_filters(params) -> list[dict]:
    """The conditions of the plain URL filters older links use (split, label, search, flag,
    meta=KEY=VALUE, meta.KEY=VALUE), so that they show as chips like any other."""
    parts: list[dict] = []
    if split := params.get("split"):
        parts.append({"field": "split", "op": "=", "value": split})
    if label := params.get("label"):
        parts.append({"field": "label", "op": "=", "value": None if label == "none" else label})
    if search := (params.get("search") or "").strip():
        parts.append(
            {
                "any": [
                    {"field": "text", "op": "contains", "value": search},
                    {"field": "external_id", "op": "=", "value": search},
                ]
            }
        )
    if flag := params.get("flag"):
        parts.append({"field": "flags", "op": "contains", "value": flag})
    pairs = [(k[5:], v) for k, v in params.items() if k.startswith("meta.")]
    if "=" in (params.get("meta") or ""):
        key, _, value = params["meta"].partition("=")
        pairs.append((key.strip(), value.strip()))
    for key, value in pairs:
        if key and value != "":
            parts.append(condition_from_form(f"{METADATA}{key}", "=", value))
    return parts


# --- SQL pieces the ORM has no word for ---------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _only(node: dict, allowed: set[str], path: str) -> None:
    extra = sorted(set(node) - allowed)
    if extra:
        raise QueryError(
            _join(path, extra[0]), f"unexpected key next to {', '.join(sorted(allowed))}"
        )


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise QueryError(path, "in needs a list of values")
    if len(value) > MAX_IN_VALUES:
        raise QueryError(path, f"in takes at most {MAX_IN_VALUES:,} values")
    return value


def _json_scalar(value: Any, path: str) -> None:
    if value is not None and not isinstance(value, str | bool | int | float):
        raise QueryError(path, "metadata values compare with a string, number, true, false or null")
    if isinstance(value, float) and not math.isfinite(value):
        raise QueryError(path, "give a finite number")


def _json_equal(key: str, value: Any) -> Q:
    # Containment uses the jsonb operator @>; a number matches 1 and 1.0 alike.
    return Q(metadata__contains={key: value})


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class _JSONTypeIs(Func):
    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra):
        item, value = self.source_expressions
        item_sql, item_params = compiler.compile(item)
        value_sql, value_params = compiler.compile(value)
        return f"COALESCE(jsonb_typeof({item_sql}) = {value_sql}, false)", (
            *item_params,
            *value_params,
        )


class _ILike(Func):
    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra):
        text, pattern = self.source_expressions
        text_sql, text_params = compiler.compile(text)
        pattern_sql, pattern_params = compiler.compile(pattern)
        return f"COALESCE({text_sql} ILIKE {pattern_sql}, false)", (*text_params, *pattern_params)


class _JSONNumber(Func):
    """A metadata value as a number when it is one, else NULL."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"(CASE WHEN jsonb_typeof({sql}) = 'number' THEN ({sql})::float8 END)",
            (*params, *params),
        )


class _Compare(Func):
    output_field = BooleanField()
    SQL = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}

    def __init__(self, *expressions, op: str):
        super().__init__(*expressions)
        self.op = op

    def as_sql(self, compiler, connection, **extra):
        left, right = self.source_expressions
        left_sql, left_params = compiler.compile(left)
        right_sql, right_params = compiler.compile(right)
        return (
            f"COALESCE({left_sql} {self.SQL[self.op]} {right_sql}, false)",
            (*left_params, *right_params),
        )


class _InPolygon(Func):
    """The map point (x, y) lies inside the polygon (PostgreSQL's geometric types)."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra):
        x, y, polygon = self.source_expressions
        x_sql, x_params = compiler.compile(x)
        y_sql, y_params = compiler.compile(y)
        p_sql, p_params = compiler.compile(polygon)
        return (
            f"COALESCE(point({x_sql}, {y_sql}) <@ ({p_sql})::polygon, false)",
            (*x_params, *y_params, *p_params),
        )


class RowCompare(Func):
    """(a, b) < (c, d): a row comparison the index on (…, a, b) serves, for keyset paging."""

    output_field = BooleanField()

    def __init__(self, left, right, op: str):
        super().__init__(*left, *right)
        self.width, self.op = len(left), op

    def as_sql(self, compiler, connection, **extra):
        parts = [compiler.compile(e) for e in self.source_expressions]
        left, right = parts[: self.width], parts[self.width :]
        sql = "({}) {} ({})".format(
            ", ".join(p[0] for p in left), self.op, ", ".join(p[0] for p in right)
        )
        return sql, tuple(param for p in parts for param in p[1])
