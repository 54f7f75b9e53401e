"""The collaboration API, every endpoint as every role, and a session worked end to end."""

from __future__ import annotations

import pytest

from apps.datasets.models import Sample
from apps.projects.capabilities import Cap
from apps.review.models import Comment
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected
from tests.review.test_review import start

ENDPOINTS = [
    ("get", "/api/datasets/{d}/review-sessions/", None, Cap.VIEW, 200),
    ("post", "/api/datasets/{d}/review-sessions/", {"title": "t", "participants": ["reviewer1"]}, Cap.CURATE, 201),
    ("get", "/api/review-sessions/{s}/", None, Cap.VIEW, 200),
    ("post", "/api/review-sessions/{s}/votes/", {"sample": "{x}", "choice": "keep"}, Cap.COMMENT, 200),
    ("get", "/api/review-sessions/{s}/decisions/", None, Cap.VIEW, 200),
    ("post", "/api/review-sessions/{s}/decisions/", {"sample": "{x}", "outcome": "remove", "reason": "junk"}, Cap.ADJUDICATE, 201),
    ("post", "/api/review-sessions/{s}/close/", None, Cap.CURATE, 200),
    ("get", "/api/datasets/{d}/samples/{x}/comments/", None, Cap.VIEW, 200),
    ("post", "/api/datasets/{d}/samples/{x}/comments/", {"body": "hm"}, Cap.COMMENT, 201),
    ("get", "/api/projects/{p}/activity/", None, Cap.VIEW, 200),
    ("get", "/api/projects/{p}/consensus-policy/", None, Cap.VIEW, 200),
    ("put", "/api/projects/{p}/consensus-policy/", {"min_votes": 3, "agreement": 0.75, "reviewers_adjudicate": False}, Cap.MANAGE_MEMBERS, 200),
]  # fmt: skip


def fill(value, ids):
    if isinstance(value, str):
        return int(value.format(**ids)) if value.startswith("{") else value.format(**ids)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body,cap,ok", ENDPOINTS)
def test_every_endpoint_as_every_role(
    persona, method, template, body, cap, ok, world, team, api_as
):
    dataset, _run, _rows = world
    session = start(world, team, people=("reviewer", "scientist", "owner", "manager"))
    ids = {
        "d": dataset.pk,
        "s": session.pk,
        "x": session.items.first().sample_id,
        "p": team.project.pk,
    }
    # Vote as a participant: the non-participant roles that may comment are refused by rule.
    response = getattr(api_as(team.user(persona)), method)(
        template.format(**ids), fill(body, ids), format="json"
    )
    assert response.status_code == expected(persona, cap, ok), response.content[:300]


def test_a_session_through_the_api(world, team, api_as):
    dataset, _run, _rows = world
    owner = api_as(team.user("owner"))
    created = owner.post(
        f"/api/datasets/{dataset.pk}/review-sessions/",
        {
            "title": "Dogs",
            "q": {"field": "label", "op": "=", "value": "dog"},
            "ordering": "-mislabel_score",
            "participants": ["reviewer1", "scientist1"],
            "blind": True,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    session = created.json()
    first = session["items"][0]
    for persona in ("reviewer", "scientist"):
        vote = api_as(team.user(persona)).post(
            f"/api/review-sessions/{session['id']}/votes/",
            {"sample": first, "choice": "relabel", "label": "bird"},
            format="json",
        )
        assert vote.status_code == 200, vote.content
    closed = owner.post(f"/api/review-sessions/{session['id']}/close/")
    assert closed.json()["summary"]["decided"] == 1
    late = api_as(team.user("reviewer")).post(
        f"/api/review-sessions/{session['id']}/votes/",
        {"sample": first, "choice": "keep"},
        format="json",
    )
    assert late.status_code == 400 and "closed" in str(late.json())
    applied = owner.post(f"/api/review-sessions/{session['id']}/apply/", {}, format="json")
    assert applied.status_code == 201 and applied.json()["stats"]["relabelled"] == 1
    assert Sample.objects.get(pk=first).label == "bird"
    bad = api_as(team.user("viewer")).post(
        f"/api/review-sessions/{session['id']}/votes/",
        {"sample": first, "choice": "keep"},
        format="json",
    )
    assert bad.status_code == 403


def test_comments_through_the_api_render_safely_and_only_authors_change_them(world, team, api_as):
    dataset, _run, rows = world
    url = f"/api/datasets/{dataset.pk}/samples/{rows[0]['id']}/comments/"
    made = api_as(team.user("reviewer")).post(
        url, {"body": "<img src=x onerror=alert(1)> *hm*"}, format="json"
    )
    assert made.status_code == 201
    html = made.json()["html"]
    assert "<em>hm</em>" in html and "<img" not in html
    other = api_as(team.user("scientist")).patch(
        f"/api/comments/{made.json()['id']}/", {"body": "x"}, format="json"
    )
    assert other.status_code == 403
    mine = api_as(team.user("reviewer")).patch(
        f"/api/comments/{made.json()['id']}/", {"body": "better"}, format="json"
    )
    assert mine.status_code == 200 and mine.json()["edited_at"]
    reply = api_as(team.user("scientist")).post(
        url, {"body": "agreed", "parent": made.json()["id"]}, format="json"
    )
    assert reply.status_code == 201 and reply.json()["parent"] == made.json()["id"]
    assert (
        api_as(team.user("reviewer")).delete(f"/api/comments/{made.json()['id']}/").status_code
        == 204
    )
    assert Comment.objects.get(pk=made.json()["id"]).deleted
    assert api_as(team.user("vendor")).get(url).status_code == 404


def test_notifications_are_ones_own(world, team, api_as):
    start(world, team)
    mine = api_as(team.user("reviewer")).get("/api/notifications/").json()["results"]
    assert [n["kind"] for n in mine] == ["session"]
    assert api_as(team.user("viewer")).get("/api/notifications/").json()["results"] == []
    api_as(team.user("reviewer")).post("/api/notifications/")
    assert all(
        n["read_at"]
        for n in api_as(team.user("reviewer")).get("/api/notifications/").json()["results"]
    )


def test_an_adjudication_without_an_outcome_is_a_400_naming_it(world, team, api_as):
    from apps.review import services
    from apps.review.models import Decision

    session = start(world, team)
    services.session_close(session=session, by=team.user("owner"))
    sample = session.items.first().sample_id
    for body in (
        {"sample": sample, "reason": "r"},
        {"sample": sample, "reason": "r", "outcome": ""},
    ):
        response = api_as(team.user("manager")).post(
            f"/api/review-sessions/{session.pk}/decisions/", body, format="json"
        )
        assert response.status_code == 400 and "outcome" in response.json(), response.content
    assert not Decision.objects.filter(source="adjudicator").exists()
