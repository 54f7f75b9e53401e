"""The explorer's API: samples by query and ordering a page at a time, neighbours, bulk actions
on a selection, tags and saved views, tried as every role."""

from __future__ import annotations

import json
from urllib.parse import quote

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.datasets.models import Embedding, LabelEvent, SampleTag
from apps.projects.capabilities import Cap
from apps.quality.models import SampleScore
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected


def q(query) -> str:
    return quote(json.dumps(query))


def walk(client, url: str) -> list[dict]:
    rows = []
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.content
        body = page.json()
        rows += body["results"]
        url = body["next"]
    return rows


def test_pages_sorted_by_a_score_hold_every_match_once_in_order(world, team, api_as):
    dataset, run, rows = world
    client = api_as(team.user("reviewer"))
    query = {"field": "split", "op": "!=", "value": "test"}
    found = walk(
        client,
        f"/api/datasets/{dataset.pk}/samples/?q={q(query)}&ordering=-mislabel_score&page_size=7",
    )
    scored = [
        r
        for r in rows
        if r["split"] != "test" and r["score"] and r["score"]["mislabel_score"] is not None
    ]
    want = sorted(scored, key=lambda r: (r["score"]["mislabel_score"], r["id"]), reverse=True)
    assert [r["id"] for r in found] == [r["id"] for r in want]
    assert found[0]["scores"]["mislabel_score"] == want[0]["score"]["mislabel_score"]
    assert sorted(found[0]["tags"]) == sorted(want[0]["tags"])


def test_a_similarity_search_lists_the_nearest_first_with_its_similarity(world, team, api_as):
    dataset, _run, rows = world
    vectors = {
        e.sample_id: np.asarray(e.vector, dtype=float)
        for e in Embedding.objects.filter(space__dataset=dataset)
    }
    anchor = rows[4]["id"]
    unit = {k: v / np.linalg.norm(v) for k, v in vectors.items()}
    cosine = {k: float(unit[k] @ unit[anchor]) for k in vectors if k != anchor}
    want = sorted((k for k, c in cosine.items() if c >= 0.2), key=lambda k: -cosine[k])
    client = api_as(team.user("viewer"))
    query = {"similar_to": anchor, "min_similarity": 0.2}
    # No ordering given: nearest first, a page at a time.
    found = walk(client, f"/api/datasets/{dataset.pk}/samples/?q={q(query)}&page_size=4")
    assert len(want) > 8 and [r["id"] for r in found] == want
    assert [r["similarity"] for r in found] == pytest.approx([cosine[k] for k in want], abs=1e-5)
    farthest = walk(
        client,
        f"/api/datasets/{dataset.pk}/samples/?q={q(query)}&ordering=similarity&page_size=4",
    )
    assert [r["id"] for r in farthest] == want[::-1]
    by_id = client.get(f"/api/datasets/{dataset.pk}/samples/?q={q(query)}&ordering=id").json()
    assert [r["id"] for r in by_id["results"]] == sorted(want)
    plain = client.get(f"/api/datasets/{dataset.pk}/samples/").json()
    assert all(r["similarity"] is None for r in plain["results"])
    refused = client.get(f"/api/datasets/{dataset.pk}/samples/?ordering=-similarity")
    assert refused.status_code == 400 and "similar_to" in refused.json()["ordering"][0]


def test_previous_goes_back_a_page(world, team, api_as):
    dataset, _run, _rows = world
    client = api_as(team.user("viewer"))
    base = f"/api/datasets/{dataset.pk}/samples/?ordering=margin&page_size=5"
    first = client.get(base).json()
    assert first["previous"] is None
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    back = client.get(third["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in second["results"]]
    again = client.get(back["previous"]).json()
    assert [r["id"] for r in again["results"]] == [r["id"] for r in first["results"]]
    assert again["previous"] is None
    assert isinstance(first["estimated_count"], int) and first["run"] == _run.pk


def test_a_page_costs_the_same_few_queries(world, team, api_as):
    dataset, _run, _rows = world
    client = api_as(team.user("owner"))
    url = f"/api/datasets/{dataset.pk}/samples/?ordering=-outlier_score&page_size=40"
    client.get(url)  # warm the caches of the auth layer
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    assert len(queries) <= 10, [x["sql"] for x in queries]


@pytest.mark.parametrize(
    "params, field, words",
    [
        ("q=" + q({"field": "dataset__project__members__password", "op": "=", "value": "x"}), "q", "unknown field"),
        ("q={bad", "q", "not valid JSON"),
        ("ordering=text", "ordering", "cannot be sorted"),
        ("cursor=zzz", "cursor", "not a valid cursor"),
        ("run=999", "run", "no finished scoring run"),
        ("view=999", "view", "no saved view"),
        ("page_size=0", "page_size", "1 to 1000"),
    ],
)  # fmt: skip
def test_bad_requests_say_what_was_wrong(world, team, api_as, params, field, words):
    dataset, _run, _rows = world
    response = api_as(team.user("owner")).get(f"/api/datasets/{dataset.pk}/samples/?{params}")
    assert response.status_code == 400
    assert words in response.json()[field][0]


def test_neighbours_come_from_the_vectors_most_similar_first(world, team, api_as):
    dataset, _run, rows = world
    response = api_as(team.user("reviewer")).get(
        f"/api/datasets/{dataset.pk}/samples/{rows[3]['id']}/neighbours/?k=5"
    )
    assert response.status_code == 200
    found = response.json()
    assert len(found) == 5 and rows[3]["id"] not in [r["id"] for r in found]
    similarities = [r["similarity"] for r in found]
    assert similarities == sorted(similarities, reverse=True)
    assert (
        api_as(team.user("reviewer"))
        .get(f"/api/datasets/{dataset.pk}/samples/{rows[3]['id']}/neighbours/?k=0")
        .status_code
        == 400
    )


def test_select_all_matching_then_tag_and_untag(world, team, api_as):
    dataset, _run, rows = world
    client = api_as(team.user("reviewer"))
    query = {"field": "margin", "op": "<", "value": 0.5}
    want = {
        r["id"]
        for r in rows
        if r["score"] and r["score"]["margin"] is not None and r["score"]["margin"] < 0.5
    }
    response = client.post(
        f"/api/datasets/{dataset.pk}/samples/bulk/",
        {"action": "tag", "q": query, "tag": "low margin"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["changed"] == len(want)
    tagged = set(
        SampleTag.objects.filter(tag__name="low margin").values_list("sample_id", flat=True)
    )
    assert tagged == want
    by_tag = walk(
        client,
        f"/api/datasets/{dataset.pk}/samples/?q={q({'field': 'tags', 'op': 'contains', 'value': 'low margin'})}",
    )
    assert {r["id"] for r in by_tag} == want
    tags = client.get(f"/api/datasets/{dataset.pk}/tags/").json()
    assert {"name": "low margin", "samples": len(want)} in tags
    some = sorted(want)[:3]
    response = client.post(
        f"/api/datasets/{dataset.pk}/samples/bulk/",
        {"action": "untag", "q": query, "ids": some, "tag": "low margin"},
        format="json",
    )
    assert response.json()["changed"] == 3
    assert SampleTag.objects.filter(tag__name="low margin").count() == len(want) - 3


def test_relabel_a_selection_to_its_suggested_labels_goes_to_the_draft(world, team, api_as):
    dataset, run, rows = world
    client = api_as(team.user("scientist"))
    query = {"field": "likely_mislabeled", "op": "=", "value": True}
    response = client.post(
        f"/api/datasets/{dataset.pk}/samples/bulk/",
        {"action": "relabel", "q": query, "label": "suggested", "reason": "engine"},
        format="json",
    )
    assert response.status_code == 200, response.content
    want = {
        r["id"]: r["score"]["suggested_label"]
        for r in rows
        if r["score"] and r["score"]["likely_mislabeled"] and r["score"]["suggested_label"]
        and r["score"]["suggested_label"] != r["label"]
    }  # fmt: skip
    draft = dict(
        LabelEvent.objects.filter(dataset=dataset, version=None).values_list("sample_id", "label")
    )
    assert draft == want and response.json()["changed"] == len(want)
    # Removing the same selection replaces the draft's relabels.
    client.post(
        f"/api/datasets/{dataset.pk}/samples/bulk/", {"action": "remove", "q": query}, format="json"
    )
    removed = LabelEvent.objects.filter(dataset=dataset, version=None)
    assert (
        removed.filter(removed=True).count()
        == removed.count()
        == sum(1 for r in rows if r["score"] and r["score"]["likely_mislabeled"])
    )
    bad = client.post(
        f"/api/datasets/{dataset.pk}/samples/bulk/",
        {"action": "relabel", "q": query, "label": "cow"},
        format="json",
    )
    assert bad.status_code == 400 and "Unknown label" in bad.json()["label"][0]
    assert SampleScore.objects.filter(run=run).count() > 0


def test_a_bad_query_in_a_bulk_action_changes_nothing(world, team, api_as):
    dataset, _run, _rows = world
    response = api_as(team.user("owner")).post(
        f"/api/datasets/{dataset.pk}/samples/bulk/",
        {"action": "tag", "q": {"any": [{"field": "password", "op": "=", "value": 1}]}, "tag": "x"},
        format="json",
    )
    assert response.status_code == 400 and "any[0].field" in response.json()["q"][0]
    assert not SampleTag.objects.filter(tag__name="x").exists()


def test_saved_views_keep_a_query_and_share_it_by_url(world, team, api_as):
    dataset, _run, rows = world
    client = api_as(team.user("reviewer"))
    query = {"field": "split", "op": "=", "value": "test"}
    response = client.post(
        f"/api/datasets/{dataset.pk}/views/",
        {"name": "test split", "query": query, "ordering": "-outlier_score"},
        format="json",
    )
    assert response.status_code == 201, response.content
    view = response.json()
    assert view["url"].endswith(f"/datasets/{dataset.pk}/samples/?view={view['id']}")
    found = walk(client, f"/api/datasets/{dataset.pk}/samples/?view={view['id']}")
    want = [
        r
        for r in rows
        if r["split"] == "test" and r["score"] and r["score"]["outlier_score"] is not None
    ]
    assert [r["id"] for r in found] == [
        r["id"]
        for r in sorted(want, key=lambda r: (r["score"]["outlier_score"], r["id"]), reverse=True)
    ]
    bad = client.post(
        f"/api/datasets/{dataset.pk}/views/",
        {"name": "bad", "query": {"field": "split", "op": "=", "value": "prod"}},
        format="json",
    )
    assert bad.status_code == 400 and "value" in bad.json()["query"][0]
    dup = client.post(
        f"/api/datasets/{dataset.pk}/views/", {"name": "test split", "query": {}}, format="json"
    )
    assert dup.status_code == 400
    # Another reviewer may not delete it; a scientist (curate) may.
    other = api_as(team.user("viewer")).delete(f"/api/datasets/{dataset.pk}/views/{view['id']}/")
    assert other.status_code == 403
    assert (
        api_as(team.user("scientist"))
        .delete(f"/api/datasets/{dataset.pk}/views/{view['id']}/")
        .status_code
        == 204
    )


ENDPOINTS = [
    ("get", "/api/datasets/{d}/samples/?ordering=-mislabel_score", None, Cap.VIEW, 200),
    ("get", "/api/datasets/{d}/samples/{s}/", None, Cap.VIEW, 200),
    ("get", "/api/datasets/{d}/samples/{s}/neighbours/", None, Cap.VIEW, 200),
    ("get", "/api/datasets/{d}/tags/", None, Cap.VIEW, 200),
    ("get", "/api/datasets/{d}/views/", None, Cap.VIEW, 200),
    ("get", "/api/datasets/{d}/views/{v}/", None, Cap.VIEW, 200),
    ("post", "/api/datasets/{d}/views/", {"name": "mine", "query": {}}, Cap.COMMENT, 201),
    ("post", "/api/datasets/{d}/samples/bulk/", {"action": "tag", "tag": "t"}, Cap.COMMENT, 200),
    (
        "post",
        "/api/datasets/{d}/samples/bulk/",
        {"action": "untag", "tag": "check"},
        Cap.COMMENT,
        200,
    ),
    (
        "post",
        "/api/datasets/{d}/samples/bulk/",
        {"action": "relabel", "label": "cat"},
        Cap.CURATE,
        200,
    ),
    ("post", "/api/datasets/{d}/samples/bulk/", {"action": "remove"}, Cap.CURATE, 200),
    ("delete", "/api/datasets/{d}/views/{v}/", None, Cap.CURATE, 204),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body,cap,ok", ENDPOINTS)
def test_every_endpoint_as_every_role(
    persona, method, template, body, cap, ok, world, team, api_as
):
    from apps.explorer.models import SavedView

    dataset, _run, rows = world
    view = SavedView.objects.create(dataset=dataset, name="shared", query={})
    path = template.format(d=dataset.pk, s=rows[1]["id"], v=view.pk)
    response = getattr(api_as(team.user(persona)), method)(path, body, format="json")
    assert response.status_code == expected(persona, cap, ok), response.content
