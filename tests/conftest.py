"""Persona fixtures: a project with one member per role, plus an outsider who belongs elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from apps.projects.capabilities import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

PERSONAS = [*Role.values, "outsider"]


@dataclass
class Team:
    project: object
    users: dict  # persona -> User
    members: dict  # role -> Membership
    other_project: object

    def user(self, persona: str):
        return self.users[persona]


@pytest.fixture
def team(db) -> Team:
    project = ProjectFactory(name="Cats and dogs", slug="cats-dogs")
    users, members = {}, {}
    for role in Role:
        user = UserFactory(username=f"{role.value}1")
        users[role.value] = user
        members[role.value] = MembershipFactory(project=project, user=user, role=role)
    outsider = UserFactory(username="outsider")
    other = ProjectFactory(name="Other team", slug="other-team")
    MembershipFactory(project=other, user=outsider, role=Role.OWNER)
    users["outsider"] = outsider
    return Team(project=project, users=users, members=members, other_project=other)


@pytest.fixture
def api_as(db):
    """An API client authenticated with a real personal token of the given user."""

    def make(user) -> APIClient:
        client = APIClient()
        if user is not None:
            _token, key = api_token_create(user=user, name="test")
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


@pytest.fixture
def web_as(client):
    """A Django test client logged in as the given user."""

    def make(user):
        client.force_login(user)
        return client

    return make
