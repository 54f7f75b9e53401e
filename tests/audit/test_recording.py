"""Each audited act leaves exactly one entry naming who did what to what; a refused act, none."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_events_for_project
from apps.projects import services as project_services
from apps.projects.capabilities import Role
from apps.projects.models import Invitation, Membership
from tests.datasets.conftest import RECORDS, import_into, write_file
from tests.vendors.conftest import make_batch, vendor  # noqa: F401 - a fixture


def only(action: str) -> AuditEvent:
    """The one entry of `action`; fails when there are none or several."""
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [str(e) for e in events]
    return events[0]


def none_of(action: str) -> bool:
    return not AuditEvent.objects.filter(action=action).exists()


@pytest.fixture
def dataset(transactional_db, team, tmp_path):
    """A dataset with one version of three samples (the import uses a connection of its own,
    so the tests that use it run in real transactions)."""
    return import_into(team, write_file(tmp_path / "d.jsonl", RECORDS, "jsonl"))


# --- Roles ---------------------------------------------------------------------------------------


def test_role_change_records_the_old_and_the_new_role(team, api_as):
    viewer = team.members["viewer"]
    response = api_as(team.user("owner")).patch(
        f"/api/projects/{team.project.pk}/members/{viewer.pk}/", {"role": "manager"}, format="json"
    )
    assert response.status_code == 200
    event = only("member.role_changed")
    assert event.actor == team.user("owner") and event.actor_name == "owner1"
    assert event.project == team.project and event.project_name == "Cats and dogs"
    assert event.target == "viewer1"
    assert event.detail == {"from": "viewer", "to": "manager"}


def test_setting_the_same_role_records_nothing(team, web_as):
    reviewer = team.members["reviewer"]
    web_as(team.user("owner")).post(
        f"/projects/cats-dogs/members/{reviewer.pk}/role/", {"role": "reviewer"}
    )
    assert none_of("member.role_changed")


def test_page_role_change_is_recorded_like_the_api(team, web_as):
    reviewer = team.members["reviewer"]
    web_as(team.user("owner")).post(
        f"/projects/cats-dogs/members/{reviewer.pk}/role/", {"role": "owner"}
    )
    event = only("member.role_changed")
    assert (event.actor_name, event.target, event.detail) == (
        "owner1",
        "reviewer1",
        {"from": "reviewer", "to": "owner"},
    )


def test_member_added_removed_and_leaving(team, api_as):
    from tests.factories import UserFactory

    newbie = UserFactory(username="newbie")
    owner = api_as(team.user("owner"))
    member = project_services.member_add(
        project=team.project, user=newbie, role="reviewer", by=team.user("owner")
    )
    added = only("member.added")
    assert (added.actor_name, added.target, added.detail) == (
        "owner1",
        "newbie",
        {"role": "reviewer"},
    )
    owner.delete(f"/api/projects/{team.project.pk}/members/{member.pk}/")
    removed = only("member.removed")
    assert (removed.actor_name, removed.target, removed.detail) == (
        "owner1",
        "newbie",
        {"role": "reviewer"},
    )
    scientist = team.members["scientist"]
    api_as(team.user("scientist")).delete(
        f"/api/projects/{team.project.pk}/members/{scientist.pk}/"
    )
    left = only("member.left")
    assert (left.actor_name, left.target) == ("scientist1", "scientist1")


def test_refusing_to_remove_or_demote_the_last_owner_records_nothing(team, api_as, web_as):
    owner = team.members["owner"]
    client = api_as(team.user("owner"))
    url = f"/api/projects/{team.project.pk}/members/{owner.pk}/"
    assert client.delete(url).status_code == 400
    assert client.patch(url, {"role": "viewer"}, format="json").status_code == 400
    web_as(team.user("owner")).post(f"/projects/cats-dogs/members/{owner.pk}/remove/")
    assert Membership.objects.filter(pk=owner.pk, role=Role.OWNER).exists()
    assert not AuditEvent.objects.filter(action__startswith="member.").exists()


def test_a_member_change_refused_by_access_records_nothing(team, api_as):
    viewer = team.members["viewer"]
    response = api_as(team.user("manager")).patch(
        f"/api/projects/{team.project.pk}/members/{viewer.pk}/", {"role": "owner"}, format="json"
    )
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="member.").exists()


def test_invitations_created_revoked_and_accepted(team):
    owner = team.user("owner")
    first = project_services.invitation_create(
        project=team.project, email="a@example.org", role="viewer", by=owner, site_url="http://x/"
    )
    created = only("invitation.created")
    assert (created.actor_name, created.target, created.detail) == (
        "owner1",
        "a@example.org",
        {"role": "viewer"},
    )
    project_services.invitation_revoke(invitation=first, by=owner)
    project_services.invitation_revoke(invitation=first, by=owner)  # already revoked: no entry
    revoked = only("invitation.revoked")
    assert (revoked.actor_name, revoked.target) == ("owner1", "a@example.org")

    second = project_services.invitation_create(
        project=team.project, email="b@example.org", role="scientist", by=owner, site_url="x"
    )
    membership = project_services.invitation_accept(
        invitation=Invitation.objects.get(pk=second.pk),
        username="bea",
        password="a fine new secret 7",
    )
    accepted = only("invitation.accepted")
    assert accepted.actor == membership.user and accepted.actor_name == "bea"
    assert accepted.project == team.project and accepted.target == "bea"
    assert accepted.detail == {
        "role": "scientist",
        "email": "b@example.org",
        "invited_by": "owner1",
        "new_account": True,
    }


def test_an_invitation_declined_is_recorded(team):
    invitee = team.user("outsider")
    invitation = project_services.invitation_create(
        project=team.project,
        email=invitee.email,
        role="viewer",
        by=team.user("owner"),
        site_url="x",
    )
    project_services.invitation_decline(invitation=invitation, user=invitee)
    declined = only("invitation.declined")
    assert (declined.actor, declined.project, declined.target) == (
        invitee,
        team.project,
        invitee.email,
    )


def test_a_refused_invitation_records_nothing(team):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        project_services.invitation_create(
            project=team.project,
            email="not an address",
            role="viewer",
            by=team.user("owner"),
            site_url="x",
        )
    assert not AuditEvent.objects.filter(action__startswith="invitation.").exists()


def test_creating_a_project_records_its_first_owner(team, api_as):
    response = api_as(team.user("scientist")).post(
        "/api/projects/", {"name": "Birds"}, format="json"
    )
    assert response.status_code == 201
    event = only("project.created")
    assert (event.actor_name, event.project_name, event.detail) == (
        "scientist1",
        "Birds",
        {"role": "owner"},
    )


def test_report_sharing_is_recorded(team, web_as):
    web_as(team.user("owner")).post("/reports/projects/cats-dogs/", {"viewers": "on"})
    event = only("report.sharing_changed")
    assert (event.actor_name, event.detail) == ("owner1", {"viewers": True})


def test_saving_report_sharing_unchanged_records_nothing(team, web_as):
    client = web_as(team.user("owner"))
    client.post("/reports/projects/cats-dogs/", {})  # not shared, as before
    assert none_of("report.sharing_changed")
    client.post("/reports/projects/cats-dogs/", {"viewers": "on"})
    client.post("/reports/projects/cats-dogs/", {"viewers": "on"})
    only("report.sharing_changed")


# --- Deletions -----------------------------------------------------------------------------------


def test_deleting_a_project_keeps_its_trail_under_its_name(team, dataset, web_as):
    web_as(team.user("owner")).post("/projects/cats-dogs/delete/", {"confirm_slug": "cats-dogs"})
    event = only("project.deleted")
    assert event.project is None and event.project_name == "Cats and dogs"
    assert event.actor_name == "owner1" and event.target == "Cats and dogs"
    assert event.detail == {"slug": "cats-dogs", "datasets": 1, "members": 6}
    gone = only("dataset.deleted")
    assert gone.project_name == "Cats and dogs" and gone.detail["samples"] == 3


def test_a_deleted_projects_trail_stays_out_of_other_projects_logs(team, dataset):
    owner = team.user("owner")
    doomed = project_services.project_create(name="Doomed", by=owner)
    project_services.project_delete(project=doomed, by=owner)
    assert only("project.deleted").project is None
    # owner1 belongs to Cats and dogs: the account-level rule must not take the deleted
    # project's events (their project is gone too) for owner1's own account events.
    actions = set(audit_events_for_project(team.project).values_list("action", flat=True))
    assert "project.deleted" not in actions and "project.created" not in actions


def test_a_refused_project_deletion_records_nothing(team, web_as, api_as):
    web_as(team.user("owner")).post("/projects/cats-dogs/delete/", {"confirm_slug": "wrong"})
    assert (
        api_as(team.user("manager")).delete(f"/api/projects/{team.project.pk}/").status_code == 403
    )
    assert none_of("project.deleted")


def test_dataset_deletion(team, dataset, api_as):
    assert api_as(team.user("scientist")).delete(f"/api/datasets/{dataset.pk}/").status_code == 403
    assert none_of("dataset.deleted")
    assert api_as(team.user("owner")).delete(f"/api/datasets/{dataset.pk}/").status_code == 204
    event = only("dataset.deleted")
    assert (event.actor_name, event.target, event.project) == ("owner1", "animals", team.project)
    assert event.detail == {"dataset_id": dataset.pk, "modality": "text", "samples": 3}


def test_saved_view_deletion(team, dataset, api_as):
    author = api_as(team.user("reviewer"))
    view = author.post(
        f"/api/datasets/{dataset.pk}/views/", {"name": "cats", "query": {}}, format="json"
    ).json()
    url = f"/api/datasets/{dataset.pk}/views/{view['id']}/"
    assert api_as(team.user("viewer")).delete(url).status_code in (403, 404)
    assert none_of("saved_view.deleted")
    assert author.delete(url).status_code == 204
    event = only("saved_view.deleted")
    assert (event.actor_name, event.target, event.project) == ("reviewer1", "cats", team.project)
    assert event.detail == {"dataset": "animals", "dataset_id": dataset.pk}


def test_comment_deletion(team, dataset, api_as):
    from apps.review.services import comment_create

    sample = dataset.samples.get(external_id="r1")
    comment = comment_create(
        project=team.project,
        author=team.user("reviewer"),
        body="odd",
        dataset=dataset,
        sample=sample,
    )
    assert api_as(team.user("scientist")).delete(f"/api/comments/{comment.pk}/").status_code in (
        403,
        404,
    )
    assert none_of("comment.deleted")
    assert api_as(team.user("reviewer")).delete(f"/api/comments/{comment.pk}/").status_code == 204
    event = only("comment.deleted")
    assert (event.actor_name, event.target) == ("reviewer1", f"comment {comment.pk}")
    assert event.detail == {"on": "sample r1", "dataset_id": dataset.pk}


# --- Exports -------------------------------------------------------------------------------------


def test_dataset_export_from_the_api(team, dataset, api_as):
    assert api_as(team.user("viewer")).get(f"/api/datasets/{dataset.pk}/export/").status_code == 403
    assert none_of("dataset.exported")
    response = api_as(team.user("scientist")).get(
        f"/api/datasets/{dataset.pk}/export/?format=jsonl"
    )
    assert response.status_code == 200
    b"".join(response.streaming_content)
    event = only("dataset.exported")
    assert (event.actor_name, event.target, event.project) == (
        "scientist1",
        "animals v1",
        team.project,
    )
    assert event.detail == {"dataset_id": dataset.pk, "format": "jsonl", "version": 1, "rows": 3}


def test_dataset_export_from_the_command_line(team, dataset, tmp_path):
    out = tmp_path / "out.csv"
    call_command("export_dataset", str(out), dataset=dataset.pk, stderr=io.StringIO())
    event = only("dataset.exported")
    assert event.actor is None and event.actor_name == ""
    assert event.detail["via"] == "command" and event.detail["rows"] == 3


def test_scores_export(transactional_db, team, world, api_as, tmp_path):
    dataset, run, _rows = world
    url = f"/api/datasets/{dataset.pk}/scoring-runs/{run.pk}/scores/"
    assert api_as(team.user("reviewer")).get(url).status_code == 403
    assert none_of("scores.exported")
    response = api_as(team.user("manager")).get(url)
    assert response.status_code == 200
    b"".join(response.streaming_content)
    event = only("scores.exported")
    assert (event.actor_name, event.target) == ("manager1", f"q scoring run {run.pk}")
    from apps.quality.models import SampleScore

    scored = SampleScore.objects.filter(run=run).count()
    assert event.detail == {
        "dataset_id": dataset.pk,
        "run_id": run.pk,
        "format": "csv",
        "version": 1,
        "rows": scored,
    }
    call_command("export_scores", str(tmp_path / "s.csv"), dataset=dataset.pk, stderr=io.StringIO())
    assert AuditEvent.objects.filter(action="scores.exported", actor=None).count() == 1


def test_vendor_batch_export_page_and_api(team, world, vendor, web_as, api_as):  # noqa: F811
    batch = make_batch(world, team, vendor)
    assert web_as(team.user("scientist")).get(
        f"/vendors/batches/{batch.pk}/export"
    ).status_code in (
        403,
        404,
    )
    assert none_of("batch.exported")
    page = web_as(team.user("manager")).get(
        f"/vendors/batches/{batch.pk}/export?format=label-studio&predictions=1"
    )
    assert page.status_code == 200
    event = only("batch.exported")
    assert (event.actor_name, event.project) == ("manager1", team.project)
    assert event.detail == {
        "batch_id": batch.pk,
        "format": "label-studio",
        "vendor": "Acme Labels",
        "rows": len(json.loads(page.content)),
        "predictions": True,
    }
    api = api_as(team.user("owner")).get(f"/api/batches/{batch.pk}/export/?format=csv")
    assert api.status_code == 200
    by_owner = AuditEvent.objects.get(action="batch.exported", actor_name="owner1")
    assert by_owner.detail["format"] == "csv" and by_owner.detail["rows"] == batch.items.count()


def test_report_csv_download(team, web_as):
    client = web_as(team.user("manager"))
    assert client.get("/reports/projects/cats-dogs/?csv=nonsense").status_code == 404
    assert none_of("report.exported")
    assert (
        client.get("/reports/projects/cats-dogs/?csv=scorecards&start=2026-01-01").status_code
        == 200
    )
    event = only("report.exported")
    assert (event.actor_name, event.target) == ("manager1", "scorecards table")
    assert event.detail == {
        "table": "scorecards",
        "format": "csv",
        "rows": 0,
        "start": "2026-01-01",
        "end": None,
    }


# --- API tokens ----------------------------------------------------------------------------------


def test_token_creation_and_revocation_are_account_level(team, web_as):
    client = web_as(team.user("scientist"))
    client.post("/accounts/tokens/", {"name": "laptop"})
    created = only("token.created")
    token = team.user("scientist").api_tokens.get(name="laptop")
    assert created.project is None and created.project_name == ""
    assert created.actor == team.user("scientist")
    assert created.target == "scientist1's token “laptop”"
    assert created.detail == {"user_id": team.user("scientist").pk, "prefix": token.prefix}
    client.post(f"/accounts/tokens/{token.pk}/revoke/")
    client.post(f"/accounts/tokens/{token.pk}/revoke/")  # already revoked: no entry
    assert only("token.revoked").actor_name == "scientist1"


def test_a_members_token_shows_in_their_projects_logs_only(team, api_session_as):
    api_session_as(team.user("scientist")).post("/api/tokens/", {"name": "ci"}, format="json")
    api_session_as(team.user("outsider")).post("/api/tokens/", {"name": "theirs"}, format="json")

    def targets(project):
        return set(
            audit_events_for_project(project, action="tokens").values_list("target", flat=True)
        )

    assert "scientist1's token “ci”" in targets(team.project)
    assert "outsider's token “theirs”" not in targets(team.project)
    assert "outsider's token “theirs”" in targets(team.other_project)
    assert "scientist1's token “ci”" not in targets(team.other_project)


def test_a_token_made_at_the_console_shows_in_the_members_projects(team):
    call_command("create_api_token", "reviewer1", stdout=io.StringIO(), stderr=io.StringIO())
    event = only("token.created")
    assert event.actor is None and event.detail["via"] == "command"
    assert event in audit_events_for_project(team.project)
    assert event not in audit_events_for_project(team.other_project)


def test_a_former_members_tokens_leave_the_log(team, api_session_as):
    api_session_as(team.user("viewer")).post("/api/tokens/", {"name": "old"}, format="json")
    project_services.member_remove(member=team.members["viewer"], by=team.user("owner"))
    targets = audit_events_for_project(team.project, action="tokens").values_list(
        "target", flat=True
    )
    assert "viewer1's token “old”" not in set(targets)
    # Their removal itself stays.
    assert audit_events_for_project(team.project, action="member.removed").count() == 1
