"""Ordinary bad input to the API is a 400 that names the problem and changes nothing, never a
500: missing fields, OPTIONS, text PostgreSQL cannot store, coordinates beyond any map, JSON
nested deeper than anyone writes."""

from __future__ import annotations

import base64
import json

import pytest

from apps.datasets.services import upload_create
from apps.explorer.models import SavedView
from apps.review.models import ConsensusPolicy

pytestmark = pytest.mark.django_db

CATS = {"field": "label", "op": "=", "value": "cat"}
HUGE_POLYGON = {"within": [[0, 0], [1e308, 0], [1e308, 1e308], [0, 1e308]]}


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_a_saved_view_without_a_query_is_refused_naming_the_query(world, team, api_as):
    dataset, _run, _rows = world
    response = api_as(team.user("owner")).post(
        f"/api/datasets/{dataset.pk}/views/", {"name": "cats"}, format="json"
    )
    assert response.status_code == 400
    assert "query" in response.json()
    assert not SavedView.objects.filter(dataset=dataset).exists()


def test_a_partial_consensus_policy_put_names_the_missing_fields(team, api_as):
    response = api_as(team.user("owner")).put(
        f"/api/projects/{team.project.pk}/consensus-policy/", {"min_votes": 3}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"agreement", "reviewers_adjudicate"}
    assert not ConsensusPolicy.objects.filter(project=team.project, min_votes=3).exists()


@pytest.mark.parametrize("path", ["consensus-policy", "monitoring", "upload", "view"])
def test_options_describes_an_endpoint_instead_of_failing(world, team, api_as, path):
    dataset, _run, _rows = world
    owner = team.user("owner")
    url = {
        "consensus-policy": f"/api/projects/{team.project.pk}/consensus-policy/",
        "monitoring": f"/api/projects/{team.project.pk}/monitoring/",
        "upload": f"/api/datasets/{dataset.pk}/uploads/"
        f"{upload_create(dataset=dataset, by=owner, file_name='a.csv', size=10).pk}/",
        "view": f"/api/datasets/{dataset.pk}/views/",
    }[path]
    response = api_as(owner).options(url)
    assert response.status_code == 200
    assert response.json()["name"]


BAD_TEXT = {
    "NUL in a value": {"field": "text", "op": "contains", "value": "a\x00b"},
    "lone surrogate in a value": {"field": "external_id", "op": "=", "value": "\ud800"},
    "NUL in a metadata key": {"field": "metadata.k\x00", "op": "=", "value": 1},
    "lone surrogate in a metadata key": {"field": "metadata.\udfff", "op": "=", "value": 1},
    "NUL in a metadata value": {"field": "metadata.src", "op": "=", "value": "w\x00"},
    "NUL in a tag": {"field": "tags", "op": "contains", "value": "\x00"},
    "lone surrogate in a similar_text": {"similar_text": "\ud800", "space": "e"},
}


@pytest.mark.parametrize("case", list(BAD_TEXT))
def test_text_postgresql_cannot_hold_in_a_query_is_a_400(world, team, api_as, case):
    dataset, _run, _rows = world
    client = api_as(team.user("owner"))
    q = json.dumps(BAD_TEXT[case])  # ASCII, with \u escapes: what a client sends
    response = client.get(f"/api/datasets/{dataset.pk}/samples/", {"q": q})
    assert response.status_code == 400
    assert "NUL" in response.json()["q"][0]
    response = client.post(
        f"/api/datasets/{dataset.pk}/views/",
        data=json.dumps({"name": "odd", "query": BAD_TEXT[case]}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "NUL" in response.json()["query"][0]
    assert not SavedView.objects.filter(dataset=dataset).exists()


def test_coordinates_beyond_any_map_are_refused_when_read_and_when_saved(world, team, api_as):
    dataset, _run, _rows = world
    client = api_as(team.user("owner"))
    response = client.get(f"/api/datasets/{dataset.pk}/samples/", {"q": json.dumps(HUGE_POLYGON)})
    assert response.status_code == 400
    assert "within[1]" in response.json()["q"][0]
    response = client.post(
        f"/api/datasets/{dataset.pk}/views/",
        {"name": "everywhere", "query": HUGE_POLYGON},
        format="json",
    )
    assert response.status_code == 400
    assert "within[1]" in response.json()["query"][0]
    assert not SavedView.objects.filter(dataset=dataset).exists()


@pytest.mark.parametrize("levels", [65, 50_000])
def test_json_nested_deeper_than_the_limit_is_a_400_on_any_endpoint(world, team, api_as, levels):
    dataset, _run, _rows = world
    client = api_as(team.user("owner"))
    for method, url in [
        ("post", "/api/projects/"),
        ("put", f"/api/projects/{team.project.pk}/consensus-policy/"),
        ("post", f"/api/datasets/{dataset.pk}/views/"),
        ("post", f"/api/datasets/{dataset.pk}/model-runs/"),
    ]:
        response = getattr(client, method)(url, data=deep(levels), content_type="application/json")
        assert response.status_code == 400, url
        assert "64 levels" in response.json()["detail"]


def test_json_at_the_limit_is_read(team, api_as):
    body = {"name": "Deep", "description": "", "x": json.loads(deep(63))}
    response = api_as(team.user("owner")).post("/api/projects/", body, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("levels", [65, 50_000])
def test_a_deep_query_or_cursor_in_the_url_is_a_400(world, team, api_as, levels):
    dataset, _run, _rows = world
    client = api_as(team.user("owner"))
    url = f"/api/datasets/{dataset.pk}/samples/"
    response = client.get(url, {"q": deep(levels)})
    assert response.status_code == 400
    assert "64 levels" in response.json()["q"][0]
    cursor = base64.urlsafe_b64encode(deep(levels).encode()).decode().rstrip("=")
    response = client.get(url, {"cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()


def test_deep_query_text_on_the_sample_table_page_is_a_400(world, team, web_as):
    dataset, _run, _rows = world
    response = web_as(team.user("owner")).get(
        f"/datasets/{dataset.pk}/samples/", {"q": deep(50_000)}
    )
    assert response.status_code in (200, 400)
    assert b"64 levels" in response.content


def test_a_refusal_without_a_field_is_one_sentence_under_detail(world, team, api_as):
    from apps.review.services import session_create

    dataset, run, _rows = world
    owner = team.user("owner")
    session = session_create(
        dataset=dataset, by=owner, title="Open", query=CATS, run=run, participants=[owner]
    )
    response = api_as(owner).post(f"/api/review-sessions/{session.pk}/apply/")
    assert response.status_code == 400
    assert response.json() == {"detail": "Close the session first."}


def test_a_form_body_with_too_many_fields_is_a_json_400(world, team, api_as):
    dataset, _run, _rows = world
    fields = {f"f{i}": "x" for i in range(1_001)}
    response = api_as(team.user("owner")).post(
        f"/api/datasets/{dataset.pk}/imports/", fields, format="multipart"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "fields" in response.json()["detail"]


def test_an_api_body_is_json_and_a_form_is_refused_by_its_media_type(world, team, api_as):
    dataset, _run, _rows = world
    response = api_as(team.user("owner")).post(
        f"/api/datasets/{dataset.pk}/review-sessions/",
        {"title": "x", "q": "null"},
        format="multipart",
    )
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


def test_a_score_export_says_its_format(world, team, api_as):
    dataset, run, _rows = world
    response = api_as(team.user("owner")).get(
        f"/api/datasets/{dataset.pk}/scoring-runs/{run.pk}/scores/", {"format": "parquet"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apache.parquet"


@pytest.mark.parametrize("size", ["ten", "0", "1001", "-3"])
def test_a_page_size_a_list_cannot_serve_is_refused_naming_it(team, api_as, size):
    response = api_as(team.user("owner")).get(f"/api/projects/?page_size={size}")
    assert response.status_code == 400
    assert response.json() == {"page_size": ["A page holds 1 to 1000 items."]}


def test_the_schema_bounds_every_page_size(team, api_as):
    import json

    answer = api_as(team.user("owner")).get(
        "/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}
    )
    schema = json.loads(answer.content)
    sizes = [
        parameter["schema"]
        for path in schema["paths"].values()
        for operation in path.values()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "page_size"
    ]
    assert sizes and all(s.get("minimum") == 1 and s.get("maximum") == 1000 for s in sizes), sizes
