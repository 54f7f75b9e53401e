"""Fixtures of the vendor tests: a vendor with the team's annotator, a rival vendor, batches."""

from __future__ import annotations

import pytest

from apps.projects.capabilities import Role
from apps.vendors import services
from tests.factories import MembershipFactory, UserFactory

CATS = {"field": "label", "op": "=", "value": "cat"}


@pytest.fixture
def vendor(world, team):
    dataset, _run, _rows = world
    acme = services.vendor_create(
        project=team.project, name="Acme Labels", price_per_item="0.05", currency="EUR"
    )
    services.vendor_member_add(vendor=acme, project=team.project, user=team.user("vendor"))
    return acme


def make_batch(world, team, vendor, **extra):
    dataset, run, _rows = world
    options = {"title": "Cats check", "gold_share": 0.2, "labels_per_item": 1, **extra}
    return services.batch_create(
        dataset=dataset, vendor=vendor, by=team.user("manager"),
        instructions="Is it **really** a cat?", query=CATS, ordering="-mislabel_score", run=run, **options,
    )  # fmt: skip


@pytest.fixture
def two_vendors(world, team, vendor):
    rival = services.vendor_create(project=team.project, name="Rival")
    rival_user = UserFactory(username="rival1")
    MembershipFactory(project=team.project, user=rival_user, role=Role.VENDOR)
    services.vendor_member_add(vendor=rival, project=team.project, user=rival_user)
    mine = services.batch_send(batch=make_batch(world, team, vendor), by=team.user("manager"))
    theirs = services.batch_send(batch=make_batch(world, team, rival), by=team.user("manager"))
    return mine, theirs, rival_user
