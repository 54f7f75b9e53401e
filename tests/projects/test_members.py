"""Creating projects and managing members: the rules, and what bad input gets.

People join by invitation only: see test_invitations.py."""

from __future__ import annotations

import pytest

from apps.projects.models import Membership, Project
from tests.factories import MembershipFactory


def snapshot():
    return (
        sorted(Project.objects.values_list("slug", "name")),
        sorted(Membership.objects.values_list("project__slug", "user__username", "role")),
    )


def test_creating_a_project_makes_the_creator_its_owner(team, api_as):
    response = api_as(team.user("viewer")).post(
        "/api/projects/", {"name": "Street signs"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["slug"] == "street-signs" and body["role"] == "owner"
    assert Membership.objects.get(project_id=body["id"], user=team.user("viewer")).role == "owner"


@pytest.mark.parametrize(
    "payload,field,message",
    [
        ({"name": "Dup", "slug": "cats-dogs"}, "slug", "already exists"),
        ({"name": "Bad", "slug": "no spaces!"}, "slug", "letters, numbers"),
        ({"name": ""}, "name", "blank"),
        ({}, "name", "required"),
    ],
)
def test_bad_project_input_is_400_naming_the_field(payload, field, message, team, api_as):
    before = snapshot()
    response = api_as(team.user("owner")).post("/api/projects/", payload, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert snapshot() == before


def test_unknown_role_on_change_is_400(team, api_as):
    target = team.members["viewer"]
    response = api_as(team.user("owner")).patch(
        f"/api/projects/{team.project.pk}/members/{target.pk}/",
        {"role": "superuser"},
        format="json",
    )
    assert response.status_code == 400
    assert "Unknown role" in response.json()["role"][0]
    target.refresh_from_db()
    assert target.role == "viewer"


def test_last_owner_cannot_be_demoted_or_removed(team, api_as):
    owner = team.members["owner"]
    client = api_as(team.user("owner"))
    before = snapshot()
    demote = client.patch(
        f"/api/projects/{team.project.pk}/members/{owner.pk}/", {"role": "viewer"}, format="json"
    )
    assert demote.status_code == 400 and "last owner" in demote.json()["role"][0]
    remove = client.delete(f"/api/projects/{team.project.pk}/members/{owner.pk}/")
    assert remove.status_code == 400 and "last owner" in remove.json()["member"][0]
    assert snapshot() == before


def test_an_owner_can_leave_once_another_owner_exists(team, api_as):
    client = api_as(team.user("owner"))
    manager = team.members["manager"]
    assert (
        client.patch(
            f"/api/projects/{team.project.pk}/members/{manager.pk}/",
            {"role": "owner"},
            format="json",
        ).status_code
        == 200
    )
    owner = team.members["owner"]
    assert client.delete(f"/api/projects/{team.project.pk}/members/{owner.pk}/").status_code == 204
    assert not Membership.objects.filter(pk=owner.pk).exists()
    # The former owner now gets 404, like anyone outside the project.
    assert client.get(f"/api/projects/{team.project.pk}/").status_code == 404


def test_member_of_another_project_is_404_through_this_project(team, api_as):
    foreign = Membership.objects.get(project=team.other_project)
    client = api_as(team.user("owner"))
    assert client.get(f"/api/projects/{team.project.pk}/members/{foreign.pk}/").status_code == 404
    assert (
        client.delete(f"/api/projects/{team.project.pk}/members/{foreign.pk}/").status_code == 404
    )
    assert Membership.objects.filter(pk=foreign.pk).exists()


def test_duplicate_membership_is_refused_by_the_database(team):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        MembershipFactory(project=team.project, user=team.user("viewer"), role="owner")


def test_web_last_owner_demotion_shows_the_error(team, web_as):
    owner = team.members["owner"]
    response = web_as(team.user("owner")).post(
        f"/projects/cats-dogs/members/{owner.pk}/role/",
        {"role": "viewer"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    assert "last owner" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == "owner"


def test_web_project_create_rejects_duplicate_slug(team, web_as):
    before = snapshot()
    response = web_as(team.user("viewer")).post(
        "/projects/", {"name": "Cats and dogs", "slug": "cats-dogs"}
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert snapshot() == before


def test_project_list_api_is_cursor_paginated(team, api_as):
    user = team.user("owner")
    for i in range(5):
        MembershipFactory(user=user, role="viewer", project__slug=f"extra-{i}")
    client = api_as(user)
    first = client.get("/api/projects/?page_size=4").json()
    assert len(first["results"]) == 4 and first["next"]
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 2 and second["next"] is None
    assert not {p["id"] for p in first["results"]} & {p["id"] for p in second["results"]}
