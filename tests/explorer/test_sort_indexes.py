"""Indexes that sort a large dataset by a metadata key: asked for by the table's first page
sorted by one, built in the background within caps, used by the planner, the order the same
with and without them, dropped with the dataset."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import override_settings

from apps.datasets import services as dataset_services
from apps.datasets.models import Dataset, Sample, SortIndex
from apps.datasets.services import sort_indexes
from apps.explorer import selectors
from apps.explorer.query import apply
from tests.explorer.test_table_sorting import expected_order, pages


def indexes_of(dataset) -> set[str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'datasets_sample'"
            " AND indexname LIKE %s",
            [f"sample_sort_{dataset.pk}_%"],
        )
        return {row[0] for row in cur.fetchall()}


@pytest.fixture
def queued(monkeypatch):
    sent: list[tuple] = []
    monkeypatch.setattr(
        sort_indexes, "task_enqueue", lambda name, *args, **kw: sent.append((name, *args))
    )
    return sent


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("key", ["n", "src"])
def test_the_order_is_the_same_with_the_index_and_the_planner_uses_it(
    world, team, api_as, key, descending
):
    dataset, _run, rows = world
    client = api_as(team.user("viewer"))
    ordering = f"{'-' if descending else ''}metadata.{key}"
    base = f"/api/datasets/{dataset.pk}/samples/?ordering={ordering}&page_size=7"
    want = expected_order(rows, f"metadata.{key}", descending=descending)
    without = pages(client, base, "next")
    assert [i for page in without for i in page] == want
    index = SortIndex.objects.create(dataset=dataset, key=key, state=SortIndex.State.READY)
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks on the table
        cur.execute(sort_index_statement(index))
        cur.execute("ANALYZE datasets_sample")
        cur.execute("SET enable_seqscan = off")
        cur.execute("SET enable_sort = off")
    try:
        present = (
            Sample.objects.filter(dataset=dataset, active=True)
            .annotate(sort_value=selectors.sort_value(f"metadata.{key}"))
            .filter(sort_value__isnull=False)
            .order_by("sort_value", "pk")[:8]
        )
        assert index.index_name in present.explain()
        with_index = pages(client, base, "next")
        assert with_index == without
        last = client.get(base).json()
        while last["next"]:
            last = client.get(last["next"]).json()
        assert pages(client, last["previous"], "previous") == without[-2::-1]
    finally:
        with connection.cursor() as cur:
            cur.execute("RESET enable_seqscan")
            cur.execute("RESET enable_sort")


def sort_index_statement(index):
    return sort_indexes.sort_index_statement(index, concurrently=False)


def test_a_first_page_sorted_by_a_key_asks_for_an_index_once_for_a_large_dataset(
    world, team, api_as, queued
):
    dataset, _run, _rows = world
    client = api_as(team.user("viewer"))
    url = f"/api/datasets/{dataset.pk}/samples/?ordering=-metadata.src&page_size=5"
    assert client.get(url).status_code == 200
    assert not SortIndex.objects.exists() and not queued  # 80 samples: no index
    with override_settings(LOUPE_SORT_INDEX_MIN_SAMPLES=50):
        first = client.get(url).json()
        client.get(first["next"])
        client.get(url)
        client.get(f"/api/datasets/{dataset.pk}/samples/?ordering=label")
        # A key no sample has is not indexed.
        client.get(f"/api/datasets/{dataset.pk}/samples/?ordering=metadata.nowhere")
    made = SortIndex.objects.get()
    assert (made.dataset, made.key, made.state) == (dataset, "src", SortIndex.State.BUILDING)
    assert queued == [("loupe.datasets.build_sort_index", made.pk)]


@override_settings(LOUPE_SORT_INDEX_MIN_SAMPLES=10, LOUPE_SORT_INDEXES_PER_DATASET=2)
def test_the_caps_bound_the_indexes_a_reader_can_make(world, team, queued):
    dataset, _run, _rows = world
    request = dataset_services.sort_index_request
    assert request(dataset=dataset, key="n") is not None
    assert request(dataset=dataset, key="src") is not None
    assert request(dataset=dataset, key="ok") is None  # two per dataset
    assert SortIndex.objects.filter(dataset=dataset).count() == 2
    other = Dataset.objects.create(project=team.project, name="other")
    for i in range(12):
        Sample.objects.create(dataset=other, external_id=f"o{i}", metadata={"a": i, "b": i})
    with override_settings(LOUPE_SORT_INDEXES_MAX=3):
        assert request(dataset=other, key="a") is not None
        assert request(dataset=other, key="b") is None  # three in all
    assert len(queued) == 3


@pytest.mark.django_db(transaction=True)
@override_settings(LOUPE_SORT_INDEX_MIN_SAMPLES=20)
def test_the_build_makes_the_index_and_deleting_the_dataset_drops_it(team, queued):
    dataset = Dataset.objects.create(project=team.project, name="big")
    Sample.objects.bulk_create(
        Sample(dataset=dataset, external_id=f"b{i}", metadata={"n": i % 7, "it's": "x"})
        for i in range(40)
    )
    index = dataset_services.sort_index_request(dataset=dataset, key="it's")
    assert index is not None and queued == [("loupe.datasets.build_sort_index", index.pk)]
    seconds = dataset_services.sort_index_build(index_id=index.pk)
    index.refresh_from_db()
    assert seconds is not None and index.state == SortIndex.State.READY
    assert indexes_of(dataset) == {index.index_name}
    assert dataset_services.sort_index_build(index_id=index.pk) is None  # built once
    page = selectors.sample_page(dataset, query={}, run=None, ordering="metadata.it's", size=50)
    assert len(page.samples) == 40
    dataset_services.dataset_delete(dataset=dataset, by=team.user("owner"))
    assert indexes_of(dataset) == set() and not SortIndex.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_build_that_fails_leaves_no_index_and_is_not_tried_again(team, monkeypatch):
    dataset = Dataset.objects.create(project=team.project, name="big")
    index = SortIndex.objects.create(dataset=dataset, key="n")
    monkeypatch.setattr(
        sort_indexes,
        "sort_index_statement",
        lambda index: sort_indexes.sql.SQL("CREATE INDEX CONCURRENTLY {} ON nowhere (id)").format(
            sort_indexes.sql.Identifier(index.index_name)
        ),
    )
    assert dataset_services.sort_index_build(index_id=index.pk) is None
    index.refresh_from_db()
    assert index.state == SortIndex.State.FAILED and indexes_of(dataset) == set()


def test_the_table_asks_for_an_index_too(world, team, web_as, queued):
    dataset, _run, _rows = world
    client = web_as(team.user("viewer"))
    with override_settings(LOUPE_SORT_INDEX_MIN_SAMPLES=50):
        response = client.get(f"/datasets/{dataset.pk}/samples/?ordering=metadata.n")
    assert response.status_code == 200
    assert SortIndex.objects.filter(dataset=dataset, key="n").exists()


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "metadata.src", "op": "=", "value": "web"},
        {"field": "metadata.n", "op": "=", "value": "seven"},
        {"all": [{"field": "metadata.n", "op": "=", "value": "seven"}, {"field": "label", "op": "!=", "value": "cat"}]},
    ],
)  # fmt: skip
def test_a_page_filtered_to_one_value_of_the_key_it_is_sorted_by_seeks_it_in_the_index(
    world, team, api_as, condition
):
    dataset, _run, rows = world
    first = condition["all"][0] if "all" in condition else condition
    key = first["field"].removeprefix("metadata.")
    index = SortIndex.objects.create(dataset=dataset, key=key, state=SortIndex.State.READY)
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute(sort_index_statement(index))
        cur.execute("ANALYZE datasets_sample")
    client = api_as(team.user("viewer"))
    query = quote(json.dumps(condition))
    matching = [
        r
        for r in rows
        if r["metadata"].get(key) == first["value"]
        and not isinstance(r["metadata"].get(key), bool)
        and ("all" not in condition or r["label"] != "cat")
    ]
    assert len(matching) > 3
    for ordering in (f"metadata.{key}", f"-metadata.{key}"):
        want = expected_order(matching, f"metadata.{key}", descending=ordering.startswith("-"))
        base = f"/api/datasets/{dataset.pk}/samples/?q={query}&ordering={ordering}&page_size=2"
        assert [i for page in pages(client, base, "next") for i in page] == want
    samples = apply(Sample.objects.filter(dataset=dataset, active=True), dataset, None, condition)
    present = (
        samples.annotate(sort_value=selectors.sort_value(f"metadata.{key}"))
        .filter(sort_value=selectors.Value(first["value"], output_field=selectors.JSONField()))
        .order_by("sort_value", "pk")
    )
    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        try:
            plan = present.explain()
        finally:
            cur.execute("RESET enable_seqscan")
    assert index.index_name in plan and "Index Cond" in plan
