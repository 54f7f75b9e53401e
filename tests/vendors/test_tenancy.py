"""A vendor belongs to one tenant: its home project. A vendor of the same name made elsewhere is
another vendor; sharing one with a second project is an act of someone who manages both, and
what a project shows of a shared vendor is only its own batches' work."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from apps.projects.capabilities import Role
from apps.projects.models import Project
from apps.review.models import Notification
from apps.vendors import services
from apps.vendors.models import CostEntry, Vendor, VendorMember
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.vendors.conftest import make_batch


@pytest.fixture
def victim(world, team):
    """Acme works for the team: a secret contact, a price, an annotator, costs booked."""
    acme = services.vendor_create(
        project=team.project,
        name="Acme Labels",
        contact="ops@acme-secret.example",
        price_per_item="0.0731",
        currency="EUR",
    )
    services.vendor_member_add(vendor=acme, project=team.project, user=team.user("vendor"))
    batch = services.batch_send(batch=make_batch(world, team, acme), by=team.user("manager"))
    item = batch.items.first()
    CostEntry.objects.create(
        item=item,
        vendor=acme,
        project=team.project,
        amount=Decimal("987.65"),
        currency="EUR",
        month=item.batch.created_at.date().replace(day=1),
    )
    return acme


def test_the_outsiders_attack_through_the_api_and_pages_reaches_nothing(
    world, team, victim, api_as, web_as, django_capture_on_commit_callbacks
):
    outsider = team.user("outsider")
    accomplice = UserFactory(username="accomplice")
    api = api_as(outsider)
    created = api.post("/api/projects/", {"name": "Copycat"}, format="json")
    assert created.status_code == 201, created.content
    mine = Project.objects.get(pk=created.json()["id"])
    invited = api.post(
        f"/api/projects/{mine.pk}/invitations/",
        {"email": accomplice.email, "role": Role.VENDOR},
        format="json",
    )
    assert invited.status_code == 201, invited.content
    theirs = api_as(accomplice)
    (invitation,) = theirs.get("/api/invitations/").json()["results"]
    accepted = theirs.post(f"/api/invitations/{invitation['id']}/accept/")
    assert accepted.status_code == 201, accepted.content
    # The same name makes a vendor of the outsider's own, with nothing of Acme's.
    made = api.post(f"/api/projects/{mine.pk}/vendors/", {"name": "Acme Labels"}, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["id"] != victim.pk
    listed = api.get(f"/api/projects/{mine.pk}/vendors/").json()
    assert [v["id"] for v in listed] == [made.json()["id"]]
    assert listed[0]["contact"] == "" and listed[0]["annotators"] == []
    assert "ops@acme-secret" not in str(listed) and "0.0731" not in str(listed)
    # The page, in the outsider's other project, makes another vendor of their own too.
    web = web_as(outsider)
    theirs = team.other_project
    web.post(f"/vendors/projects/{theirs.slug}/", {"name": "Acme Labels", "currency": "USD"})
    assert Vendor.objects.filter(name="Acme Labels").count() == 3
    assert list(victim.projects.all()) == [team.project]
    for project in (mine, theirs):
        page = web.get(f"/vendors/projects/{project.slug}/").content.decode()
        assert "Acme Labels" in page
        for secret in ("ops@acme-secret", "0.0731", "987.65", team.user("vendor").username, "Cats"):
            assert secret not in page, secret
    # Attaching the accomplice to the victim's vendor fails, by page and by service.
    web.post(
        f"/vendors/projects/{mine.slug}/",
        {"action": "member", "vendor": victim.pk, "username": "accomplice"},
    )
    assert not VendorMember.objects.filter(user=accomplice).exists()
    with pytest.raises(ValidationError, match="does not work for"):
        services.vendor_member_add(vendor=victim, project=mine, user=accomplice)
    # Their own vendor takes the accomplice.
    web.post(
        f"/vendors/projects/{mine.slug}/",
        {"action": "member", "vendor": made.json()["id"], "username": "accomplice"},
    )
    assert VendorMember.objects.get(user=accomplice).vendor_id == made.json()["id"]
    # Linking the victim's vendor to their project is the 404 of a vendor that does not exist.
    missing = Vendor.objects.order_by("-pk").first().pk + 100
    for vendor_id in (victim.pk, missing):
        response = api.post(
            f"/api/projects/{mine.pk}/vendors/links/", {"vendor": vendor_id}, format="json"
        )
        assert response.status_code == 404, response.content
        response = web.post(
            f"/vendors/projects/{mine.slug}/", {"action": "link", "vendor": vendor_id}
        )
        assert response.status_code == 404
    assert not victim.projects.filter(pk=mine.pk).exists()
    # The victim's next batch reaches nobody of the outsider's.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.batch_send(
            batch=make_batch(world, team, victim, title="CONFIDENTIAL plan"),
            by=team.user("manager"),
        )
    assert not Notification.objects.filter(user__in=[outsider, accomplice]).exists()
    assert [m.to for m in mail.outbox] == [[team.user("vendor").email]]


def test_the_same_name_in_one_project_is_refused(world, team, victim):
    with pytest.raises(ValidationError, match="already works for this project"):
        services.vendor_create(project=team.project, name="acme labels")


@pytest.fixture
def second_project(team):
    """A project where the team's manager is manager too, and a vendor annotator of its own."""
    other = ProjectFactory(name="Second", slug="second")
    MembershipFactory(project=other, user=team.user("manager"), role=Role.MANAGER)
    return other


def test_a_manager_of_both_projects_links_a_vendor_by_api_and_page(
    world, team, victim, second_project, api_as, web_as
):
    response = api_as(team.user("manager")).post(
        f"/api/projects/{second_project.pk}/vendors/links/", {"vendor": victim.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    assert victim.projects.filter(pk=second_project.pk).exists()
    # Linked, it is still the one vendor, whose home stays the team's project.
    victim.refresh_from_db()
    assert victim.home_project_id == team.project.pk
    third = ProjectFactory(name="Third", slug="third")
    MembershipFactory(project=third, user=team.user("manager"), role=Role.MANAGER)
    page = web_as(team.user("manager")).get(f"/vendors/projects/{third.slug}/").content.decode()
    assert f'value="{victim.pk}"' in page and "Link a vendor" in page
    web_as(team.user("manager")).post(
        f"/vendors/projects/{third.slug}/", {"action": "link", "vendor": victim.pk}
    )
    assert victim.projects.filter(pk=third.pk).exists()


@pytest.mark.parametrize("home_role", [Role.REVIEWER, None])
def test_linking_needs_manage_vendors_in_the_home_project_too(
    world, team, victim, api_as, web_as, home_role
):
    """An owner of the target who is a reviewer (or nobody) at the vendor's home gets a 404."""
    linker = UserFactory(username="linker")
    target = ProjectFactory(name="Target", slug="target")
    MembershipFactory(project=target, user=linker, role=Role.OWNER)
    if home_role:
        MembershipFactory(project=team.project, user=linker, role=home_role)
    response = api_as(linker).post(
        f"/api/projects/{target.pk}/vendors/links/", {"vendor": victim.pk}, format="json"
    )
    assert response.status_code == 404
    page = web_as(linker).get(f"/vendors/projects/{target.slug}/").content.decode()
    assert "Acme Labels" not in page
    assert (
        web_as(linker)
        .post(f"/vendors/projects/{target.slug}/", {"action": "link", "vendor": victim.pk})
        .status_code
        == 404
    )
    assert not victim.projects.filter(pk=target.pk).exists()


def test_a_shared_vendor_shows_each_project_only_its_own_work(
    world, team, victim, second_project, api_as, web_as, django_capture_on_commit_callbacks
):
    """The second project sees none of the home project's gold, costs, batches or annotators,
    and its own annotator hears nothing of the home project's batches."""
    services.vendor_link(vendor=victim, project=second_project, by=team.user("manager"))
    helper = UserFactory(username="second-annotator")
    MembershipFactory(project=second_project, user=helper, role=Role.VENDOR)
    services.vendor_member_add(vendor=victim, project=second_project, user=helper)
    manager = team.user("manager")
    listed = api_as(manager).get(f"/api/projects/{second_project.pk}/vendors/").json()
    assert listed[0]["annotators"] == ["second-annotator"]
    home = api_as(manager).get(f"/api/projects/{team.project.pk}/vendors/").json()
    assert home[0]["annotators"] == [team.user("vendor").username]
    page = web_as(manager).get(f"/vendors/projects/{second_project.slug}/").content.decode()
    assert "987.65" not in page and "no gold labelled yet" in page
    assert team.user("vendor").username not in page
    # A batch of the home project notifies only the annotators who work in the home project.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.batch_send(
            batch=make_batch(world, team, victim, title="CONFIDENTIAL"), by=team.user("manager")
        )
    assert not Notification.objects.filter(user=helper).exists()
    assert Notification.objects.filter(user=team.user("vendor"), text__contains="CONFIDENTIAL")
    assert [m.to for m in mail.outbox] == [[team.user("vendor").email]]


def test_the_migration_homes_each_vendor_in_its_first_linked_project(transactional_db):
    """Vendors made before homes existed: the earliest link is home, every link stays."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("vendors", "0001_initial")])
    old = executor.loader.project_state([("vendors", "0001_initial")]).apps
    OldProject, OldVendor = old.get_model("projects", "Project"), old.get_model("vendors", "Vendor")
    first, second = (OldProject.objects.create(name=n, slug=n) for n in ("first", "second"))
    shared = OldVendor.objects.create(name="Shared")
    shared.projects.add(first)
    shared.projects.add(second)
    late = OldVendor.objects.create(name="Late")
    late.projects.add(second)
    OldVendor.objects.create(name="Alone")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    homes = {v.name: v.home_project_id for v in Vendor.objects.all()}
    assert homes == {"Shared": first.pk, "Late": second.pk, "Alone": None}
    assert set(Vendor.objects.get(name="Shared").projects.values_list("pk", flat=True)) == {
        first.pk,
        second.pk,
    }
