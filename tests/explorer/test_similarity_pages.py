"""A similarity search, nearest first, a page at a time from the vector index: the same samples
in the same order as the whole search, across next and previous cursors, runs of equal
similarities, the threshold and the cap on how many a search lists."""

from __future__ import annotations

import json
from urllib.parse import quote

import numpy as np
import pytest
from django.db import connection

from apps.datasets.models import Dataset, Embedding, EmbeddingSpace, Sample
from apps.explorer import query as query_module
from apps.explorer import selectors


def q(value) -> str:
    return quote(json.dumps(value))


def pages(client, url: str) -> list[dict]:
    found = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        found.append(body)
        url = body["next"]
    return found


@pytest.fixture
def space(db, team):
    """70 samples in a 4-d space: random vectors, a run of 9 copies of one vector (equal
    similarities to anything) and 3 removed samples; the space's HNSW index, which the
    planner is made to use."""
    rng = np.random.default_rng(11)
    dataset = Dataset.objects.create(project=team.project, name="near", labels=["a", "b"])
    found = EmbeddingSpace.objects.create(dataset=dataset, name="e", dimension=4)
    copied = rng.normal(size=4)
    for i in range(70):
        sample = Sample.objects.create(
            dataset=dataset, external_id=f"n{i}", text=f"text {i}", active=i not in (5, 6, 7)
        )
        vector = copied if 20 <= i < 29 else rng.normal(size=4)
        Embedding.objects.create(space=found, sample=sample, vector=list(map(float, vector)))
    with connection.cursor() as cur:
        cur.execute(
            f"CREATE INDEX {found.index_name} ON datasets_embedding USING hnsw "
            f"((vector::vector(4)) vector_cosine_ops) WHERE space_id = {found.pk}"
        )
        cur.execute("SET enable_seqscan = off")
    yield dataset, found
    with connection.cursor() as cur:
        cur.execute("RESET enable_seqscan")


def expected(dataset, space, anchor: int, minimum: float) -> list[tuple[int, float]]:
    """Every active sample at least `minimum` similar to the anchor, by (similarity, id) both
    highest first, computed in the database exactly as the table shows it."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT e.sample_id, 1 - (e.vector <=> a.vector) FROM datasets_embedding e "
            "JOIN datasets_sample s ON s.id = e.sample_id AND s.active, datasets_embedding a "
            "WHERE e.space_id = %s AND a.space_id = %s AND a.sample_id = %s AND e.sample_id <> %s",
            [space.pk, space.pk, anchor, anchor],
        )
        rows = [(i, s) for i, s in cur.fetchall() if s >= minimum]
    return sorted(rows, key=lambda row: (-row[1], -row[0]))


@pytest.mark.parametrize("page_size", [1, 4, 7, 50])
def test_pages_of_a_similarity_search_list_every_match_once_nearest_first(
    space, team, api_as, page_size
):
    dataset, found = space
    anchor = Sample.objects.get(dataset=dataset, external_id="n3").pk
    want = expected(dataset, found, anchor, -1.0)
    assert len(want) == 66
    client = api_as(team.user("viewer"))
    base = (
        f"/api/datasets/{dataset.pk}/samples/?q={q({'similar_to': anchor, 'min_similarity': -1})}"
    )
    forward = pages(client, f"{base}&page_size={page_size}")
    rows = [r for page in forward for r in page["results"]]
    assert [r["id"] for r in rows] == [i for i, _s in want]
    assert [r["similarity"] for r in rows] == pytest.approx([s for _i, s in want], abs=1e-9)
    # Previous goes back page by page to the first.
    url = forward[-1]["previous"]
    for page in reversed(forward[:-1]):
        back = client.get(url).json()
        assert [r["id"] for r in back["results"]] == [r["id"] for r in page["results"]]
        url = back["previous"]
    assert url is None
    # The general path (the same condition inside an `all` with another part) agrees.
    both = {"all": [{"similar_to": anchor, "min_similarity": -1}, {}]}
    general = pages(
        client, f"/api/datasets/{dataset.pk}/samples/?q={q(both)}&page_size={page_size}"
    )
    assert [r["id"] for page in general for r in page["results"]] == [i for i, _s in want]


def test_a_run_of_equal_similarities_across_a_page_end_keeps_the_id_order(space, team, api_as):
    dataset, found = space
    anchor = Sample.objects.get(dataset=dataset, external_id="n20").pk  # one of the 9 copies
    want = expected(dataset, found, anchor, 0.0)
    assert [s for _i, s in want[:8]] == pytest.approx([1.0] * 8)  # its 8 copies, tied
    client = api_as(team.user("viewer"))
    url = f"/api/datasets/{dataset.pk}/samples/?q={q({'similar_to': anchor, 'min_similarity': 0})}&page_size=3"
    rows = [r for page in pages(client, url) for r in page["results"]]
    assert [r["id"] for r in rows] == [i for i, _s in want]


def test_the_threshold_ends_the_list_and_a_search_matching_nothing_is_an_empty_page(
    space, team, api_as
):
    dataset, found = space
    anchor = Sample.objects.get(dataset=dataset, external_id="n40").pk
    want = expected(dataset, found, anchor, 0.5)
    assert 0 < len(want) < 40
    client = api_as(team.user("viewer"))
    url = f"/api/datasets/{dataset.pk}/samples/?q={q({'similar_to': anchor, 'min_similarity': 0.5})}&page_size=5"
    rows = [r for page in pages(client, url) for r in page["results"]]
    assert [r["id"] for r in rows] == [i for i, _s in want]
    nothing = client.get(
        f"/api/datasets/{dataset.pk}/samples/?q={q({'similar_to': anchor, 'min_similarity': 1})}"
    ).json()
    assert nothing["results"] == [] and nothing["estimated_count"] == 0 and nothing["count_exact"]


def test_a_search_lists_at_most_its_cap_and_reads_one_page_of_neighbours(
    space, team, api_as, monkeypatch
):
    dataset, found = space
    monkeypatch.setattr(query_module, "SIMILAR_LIMIT", 10)
    monkeypatch.setattr(selectors, "SIMILAR_LIMIT", 10)
    asked: list[int] = []
    real = selectors.nearest_in_order

    def spy(*args, **kwargs):
        asked.append(kwargs["limit"])
        return real(*args, **kwargs)

    monkeypatch.setattr(selectors, "nearest_in_order", spy)

    def whole(*args, **kwargs):
        raise AssertionError("the whole search ran")

    monkeypatch.setattr(query_module, "nearest_to_vector", whole)
    anchor = Sample.objects.get(dataset=dataset, external_id="n3").pk
    want = expected(dataset, found, anchor, -1.0)
    client = api_as(team.user("viewer"))
    url = f"/api/datasets/{dataset.pk}/samples/?q={q({'similar_to': anchor, 'min_similarity': -1})}&page_size=4"
    got = pages(client, url)
    assert [r["id"] for page in got for r in page["results"]] == [i for i, _s in want[:10]]
    assert [len(page["results"]) for page in got] == [4, 4, 2]
    assert asked == [5, 5, 3]  # a page and one more, never the whole search
    assert got[0]["estimated_count"] == 10 and not got[0]["count_exact"]


def test_a_cursor_of_another_kind_or_a_changed_sample_falls_back_to_the_whole_search(
    space, team, api_as
):
    dataset, found = space
    anchor = Sample.objects.get(dataset=dataset, external_id="n3").pk
    want = [i for i, _s in expected(dataset, found, anchor, -1.0)]
    client = api_as(team.user("viewer"))
    url = f"/api/datasets/{dataset.pk}/samples/?q={q({'similar_to': anchor, 'min_similarity': -1})}&page_size=4"
    first = client.get(url).json()
    # A cursor without the rank (as the sample page's steps make): read by the general path.
    at = selectors._decode_cursor(first["next"].split("cursor=")[1].split("&")[0])
    plain = selectors._encode_cursor({"at": at["at"]})
    second = client.get(f"{url}&cursor={plain}").json()
    assert [r["id"] for r in second["results"]] == want[4:8]
    # A sample removed between two pages is left out of the next one.
    Sample.objects.filter(pk=want[5]).update(active=False)
    again = client.get(first["next"]).json()
    assert [r["id"] for r in again["results"]] == [want[4], *want[6:9]]
