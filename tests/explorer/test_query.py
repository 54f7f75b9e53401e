"""The sample query language: every operator, nesting, the allow-list, and generated predicates
checked against a plain Python filter of the same rows."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.datasets.models import Embedding, Sample
from apps.explorer.query import QueryError, apply, check_ordering, compile_query, parse
from apps.quality.models import SampleScore
from tests.datasets.conftest import FLAGS, LABELS, NUMBER_SCORES, SPLITS, TAGS


def ids(dataset, run, query) -> list[int]:
    samples = Sample.objects.filter(dataset=dataset)
    return sorted(apply(samples, dataset, run, query).values_list("pk", flat=True))


# --- the Python filter the SQL must agree with --------------------------------------------------


def value_of(row: dict, field: str):
    if field.startswith("metadata."):
        return row["metadata"].get(field[9:], _MISSING)
    if field in ("external_id", "label", "split", "text", "tags"):
        return row[field]
    if row["score"] is None:
        return [] if field == "flags" else None
    return row["score"][field]


_MISSING = object()


def python_match(node: dict, row: dict) -> bool:
    if not node:
        return True
    if "all" in node:
        return all(python_match(n, row) for n in node["all"])
    if "any" in node:
        return any(python_match(n, row) for n in node["any"])
    if "not" in node:
        return not python_match(node["not"], row)
    field, op, want = node["field"], node["op"], node["value"]
    have = value_of(row, field)
    if field.startswith("metadata."):
        return meta_match(have, op, want)
    if field in ("tags", "flags"):
        return want in have if op == "contains" else any(w in have for w in want)
    if op == "=":
        return have == want
    if op == "!=":
        return have != want
    if op == "in":
        return have in want
    if have is None:
        return False
    if op == "contains":
        return want.lower() in have.lower()
    return {"<": have < want, "<=": have <= want, ">": have > want, ">=": have >= want}[op]


def _same_json(a, b) -> bool:
    # jsonb equality: numbers by value, booleans are not numbers.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def meta_match(have, op, want) -> bool:
    if op == "=":
        return have is not _MISSING and _same_json(have, want)
    if op == "!=":
        return not (have is not _MISSING and _same_json(have, want))
    if op == "in":
        return have is not _MISSING and any(_same_json(have, w) for w in want)
    if op == "contains":
        return isinstance(have, str) and want.lower() in have.lower()
    number = isinstance(have, int | float) and not isinstance(have, bool)
    return (
        number and {"<": have < want, "<=": have <= want, ">": have > want, ">=": have >= want}[op]
    )


# --- generated predicates -----------------------------------------------------------------------

numbers = st.sampled_from([0, 0.25, 0.5, 0.75, 1, -1, 2.5])


def leaf() -> st.SearchStrategy[dict]:
    def cond(field, op, value):
        return {"field": field, "op": op, "value": value}

    text_values = st.sampled_from(["s1", "s17", "red", "cat", "%", "_", "Web", "xyz"])
    return st.one_of(
        st.builds(cond, st.just("label"), st.sampled_from(["=", "!="]), st.sampled_from([*LABELS, None])),
        st.builds(cond, st.just("label"), st.just("in"), st.lists(st.sampled_from([*LABELS, None]), max_size=3)),
        st.builds(cond, st.just("suggested_label"), st.sampled_from(["=", "!="]), st.sampled_from([*LABELS, None])),
        st.builds(cond, st.just("split"), st.sampled_from(["=", "!="]), st.sampled_from(SPLITS)),
        st.builds(cond, st.just("split"), st.just("in"), st.lists(st.sampled_from(SPLITS), max_size=2)),
        st.builds(cond, st.sampled_from(["text", "external_id"]), st.sampled_from(["=", "!=", "contains"]), text_values),
        st.builds(cond, st.sampled_from(["text", "external_id"]), st.just("in"), st.lists(text_values, max_size=3)),
        st.builds(cond, st.sampled_from(NUMBER_SCORES), st.sampled_from(["<", "<=", ">", ">=", "=", "!="]), numbers),
        st.builds(cond, st.just("cluster"), st.sampled_from(["=", "!=", "<", ">="]), st.integers(0, 3)),
        st.builds(cond, st.just("cluster"), st.just("in"), st.lists(st.integers(0, 4), max_size=3)),
        st.builds(cond, st.just("likely_mislabeled"), st.sampled_from(["=", "!="]), st.booleans()),
        st.builds(cond, st.just("tags"), st.just("contains"), st.sampled_from(TAGS)),
        st.builds(cond, st.just("tags"), st.just("in"), st.lists(st.sampled_from(TAGS), max_size=2)),
        st.builds(cond, st.just("flags"), st.just("contains"), st.sampled_from(FLAGS)),
        st.builds(cond, st.just("flags"), st.just("in"), st.lists(st.sampled_from(FLAGS), max_size=2)),
        st.builds(cond, st.just("metadata.n"), st.sampled_from(["<", "<=", ">", ">="]), numbers),
        st.builds(cond, st.sampled_from(["metadata.n", "metadata.src", "metadata.ok", "metadata.none"]),
                  st.sampled_from(["=", "!="]), st.sampled_from([1, 0.5, "web", "seven", True, False, None])),
        st.builds(cond, st.just("metadata.src"), st.just("contains"), st.sampled_from(["we", "B", "_", "%"])),
        st.builds(cond, st.just("metadata.src"), st.just("in"), st.lists(st.sampled_from(["web", "book", 3]), max_size=2)),
    )  # fmt: skip


predicates = st.recursive(
    leaf(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=8,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(predicate=predicates)
def test_generated_predicates_match_a_python_filter(world, predicate):
    dataset, run, rows = world
    expected = sorted(row["id"] for row in rows if python_match(predicate, row))
    assert ids(dataset, run, predicate) == expected, predicate


# --- each operator, by hand ---------------------------------------------------------------------


def by_ext(dataset, run, query) -> set[str]:
    samples = apply(Sample.objects.filter(dataset=dataset), dataset, run, query)
    return set(samples.values_list("external_id", flat=True))


def test_every_operator_on_a_known_row(world):
    dataset, run, _rows = world
    s = Sample.objects.get(dataset=dataset, external_id="s5")
    score = SampleScore.objects.get(run=run, sample=s)
    SampleScore.objects.filter(pk=score.pk).update(margin=0.3)
    s.metadata = {"n": 4, "src": "Newsletter"}
    s.save()
    cases = [
        ({"field": "external_id", "op": "=", "value": "s5"}, True),
        ({"field": "external_id", "op": "!=", "value": "s5"}, False),
        ({"field": "external_id", "op": "in", "value": ["s4", "s5"]}, True),
        ({"field": "metadata.src", "op": "contains", "value": "LETTER"}, True),
        ({"field": "margin", "op": "<", "value": 0.3}, False),
        ({"field": "margin", "op": "<=", "value": 0.3}, True),
        ({"field": "margin", "op": ">", "value": 0.3}, False),
        ({"field": "margin", "op": ">=", "value": 0.3}, True),
        ({"field": "margin", "op": "=", "value": 0.3}, True),
        ({"field": "margin", "op": "!=", "value": 0.3}, False),
        ({"field": "metadata.n", "op": ">", "value": 3.5}, True),
        ({"field": "metadata.n", "op": "=", "value": 4.0}, True),
        ({"not": {"field": "metadata.n", "op": "=", "value": 4}}, False),
        ({"all": [{"field": "margin", "op": "<", "value": 1}, {"field": "metadata.n", "op": "<", "value": 5}]}, True),
        ({"any": [{"field": "margin", "op": ">", "value": 1}, {"field": "metadata.n", "op": "<", "value": 5}]}, True),
        ({"any": []}, False),
        ({"all": []}, True),
        ({}, True),
    ]  # fmt: skip
    for query, found in cases:
        assert ("s5" in by_ext(dataset, run, query)) is found, query


def test_a_missing_score_fails_a_condition_and_passes_its_negation(world):
    dataset, run, _rows = world
    unscored = "s0"  # every ninth sample has no scores
    assert unscored not in by_ext(dataset, run, {"field": "margin", "op": ">=", "value": 0})
    assert unscored in by_ext(dataset, run, {"not": {"field": "margin", "op": ">=", "value": 0}})
    assert unscored in by_ext(dataset, run, {"field": "suggested_label", "op": "=", "value": None})


@pytest.mark.parametrize(
    "query, path, words",
    [
        (
            {"field": "dataset__project__members__password", "op": "=", "value": "x"},
            "field",
            "unknown field",
        ),
        ({"field": "label__in", "op": "=", "value": "cat"}, "field", "unknown field"),
        ({"field": "created_by", "op": "=", "value": 1}, "field", "unknown field"),
        ({"field": "pk", "op": ">", "value": 0}, "field", "unknown field"),
        ({"all": [{"field": "label", "op": "~", "value": "cat"}]}, "all[0].op", "does not apply"),
        ({"all": [{"field": "label", "op": "=", "value": "cow"}]}, "all[0].value", "not a label"),
        ({"any": [{}, {"field": "margin", "op": "<", "value": "x"}]}, "any[1].value", "number"),
        ({"not": {"field": "margin", "op": "<"}}, "not", "value"),
        ({"field": "split", "op": "=", "value": "prod"}, "value", "not a split"),
        ({"field": "tags", "op": "<", "value": "x"}, "op", "does not apply"),
        ({"field": "flags", "op": "contains", "value": "weird"}, "value", "not a flag"),
        ({"field": "label", "op": "in", "value": "cat"}, "value", "list"),
        ({"field": "metadata.", "op": "=", "value": 1}, "field", "needs a key"),
        ({"field": "metadata.n", "op": "<", "value": "5"}, "value", "number"),
        ({"field": "metadata.n", "op": "=", "value": {"a": 1}}, "value", "string, number"),
        ({"field": "margin", "op": "<", "value": float("nan")}, "value", "finite"),
        ({"all": {"field": "label"}}, "all", "list"),
        ({"label": "cat"}, "query", "unknown key"),
        ({"all": [], "any": []}, "any", "unexpected key"),
        (["label"], "query", "must be an object"),
        ({"within": [[0, 0], [1, 1]]}, "within", "3 to"),
        ({"within": [[0, 0], [1, 1], [0, "x"]]}, "within[2]", "pair"),
        ({"within": [[0, 0], [1e308, 1], [0, 1]]}, "within[1]", "from -1e+09 to 1e+09"),
        ({"field": "metadata.k\x00", "op": "=", "value": 1}, "query", "NUL"),
        ({"any": [{"field": "text", "op": "=", "value": "\ud800"}]}, "query", "surrogates"),
        ({"similar_to": "s1"}, "similar_to", "sample id"),
        ({"similar_to": 1, "min_similarity": 2}, "min_similarity", "-1 to 1"),
        ({"similar_to": 999999}, "similar_to", "no embedding"),
    ],
)
def test_bad_queries_are_refused_with_a_pointer_to_the_bad_part(world, query, path, words):
    dataset, run, _rows = world
    with pytest.raises(QueryError) as error:
        compile_query(dataset, run, query)
    assert error.value.path == path
    assert words in str(error.value)


def test_metadata_keys_are_literal_not_lookups(world):
    """A key with Django's lookup separator is just a key: it reaches no other table."""
    dataset, run, _rows = world
    s = Sample.objects.get(dataset=dataset, external_id="s3")
    s.metadata = {"project__members__password": "x"}
    s.save()
    found = by_ext(
        dataset, run, {"field": "metadata.project__members__password", "op": "=", "value": "x"}
    )
    assert found == {"s3"}


def test_deep_and_huge_queries_are_refused(world):
    dataset, run, _rows = world
    deep: dict = {"field": "label", "op": "=", "value": "cat"}
    for _ in range(20):
        deep = {"not": deep}
    with pytest.raises(QueryError, match="deeper"):
        compile_query(dataset, run, deep)
    wide = {"any": [{"field": "label", "op": "=", "value": "cat"}] * 300}
    with pytest.raises(QueryError, match="more than"):
        compile_query(dataset, run, wide)


def test_scores_need_a_finished_run(world):
    dataset, _run, _rows = world
    with pytest.raises(QueryError, match="no finished scoring run"):
        compile_query(dataset, None, {"field": "margin", "op": "<", "value": 0.2})
    with pytest.raises(QueryError, match="no finished scoring run"):
        check_ordering("-mislabel_score", None)
    assert check_ordering("-mislabel_score", _run) == ("mislabel_score", True)
    with pytest.raises(QueryError, match="cannot be sorted"):
        check_ordering("text", _run)


def test_query_text_must_be_json():
    assert parse("") == {}
    with pytest.raises(QueryError, match="not valid JSON"):
        parse("{label: cat}")


def test_within_a_polygon_is_a_lasso_on_the_map(world):
    dataset, run, rows = world
    triangle = [[0, 0], [1, 0], [0, 1]]
    expected = {
        row["external_id"]
        for row in rows
        if row["score"]
        and row["score"]["x"] is not None
        and row["score"]["y"] is not None
        and row["score"]["x"] + row["score"]["y"] <= 1
    }
    assert expected and by_ext(dataset, run, {"within": triangle}) == expected


def test_similar_to_finds_the_samples_above_the_threshold(world):
    dataset, run, rows = world
    vectors = {
        e.sample_id: [float(v) for v in e.vector]
        for e in Embedding.objects.filter(space__dataset=dataset)
    }
    anchor = rows[4]["id"]

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
            sum(x * x for x in a) * sum(y * y for y in b)
        )

    expected = {
        sid for sid, v in vectors.items() if sid != anchor and cosine(v, vectors[anchor]) >= 0.8
    }
    found = set(ids(dataset, run, {"similar_to": anchor, "min_similarity": 0.8}))
    assert expected and found == expected
    combined = {
        "all": [
            {"similar_to": anchor, "min_similarity": 0.8},
            {"field": "split", "op": "=", "value": "test"},
        ]
    }
    assert set(ids(dataset, run, combined)) == {
        row["id"] for row in rows if row["id"] in expected and row["split"] == "test"
    }


@pytest.mark.django_db(transaction=True)
def test_similar_text_searches_a_computed_space_with_its_own_model(team, tmp_path, api_as):
    """A text dataset without vectors gets an LSA space; free text is embedded by the same
    fitted model, so "refund" finds the refund messages."""
    from apps.datasets.services import embeddings_compute
    from tests.datasets.conftest import import_into, write_file

    topics = {
        "billing": ["refund not received", "charged twice refund", "refund my card payment"],
        "shipping": ["parcel lost in transit", "courier delivered late", "tracking parcel stuck"],
    }
    records = [
        {"id": f"t{i}", "text": f"{topics[label][i % 3]} please {i}", "label": label}
        for i, label in enumerate(["billing", "shipping"] * 15)
    ]
    dataset = import_into(team, write_file(tmp_path / "t.jsonl", records, "jsonl"), "support")
    space = embeddings_compute(dataset_id=dataset.pk, method="tfidf-svd")
    assert space.method == "tfidf-svd"
    query = {"similar_text": "refund", "min_similarity": 0.2}
    found = set(ids(dataset, None, query))
    billing = set(
        Sample.objects.filter(dataset=dataset, label="billing").values_list("pk", flat=True)
    )
    assert found and found <= billing
    response = api_as(team.user("viewer")).get(
        f"/api/datasets/{dataset.pk}/samples/", {"q": json.dumps(query)}
    )
    assert {r["id"] for r in response.json()["results"]} == found
    with pytest.raises(QueryError, match="none of the words"):
        compile_query(dataset, None, {"similar_text": "zebra"})


def test_similar_text_in_a_provided_space_says_why_not(world):
    dataset, run, _rows = world
    with pytest.raises(QueryError) as error:
        compile_query(dataset, run, {"similar_text": "cat"})
    assert error.value.path == "similar_text" and "came with the import" in str(error.value)
