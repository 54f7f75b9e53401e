"""The audit log page and API: owners only, newest first, filtered, paged, and exported as CSV
(the export itself recorded)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from apps.audit.actions import summary
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected


@pytest.fixture
def log(team):
    """A few acts of each family in the team's project, one in the other project."""
    owner, manager = team.user("owner"), team.user("manager")
    p = team.project
    audit_record(actor=owner, action="member.role_changed", project=p, target="viewer1",
                 detail={"from": "viewer", "to": "manager"})  # fmt: skip
    audit_record(actor=manager, action="dataset.exported", project=p, target="animals v2",
                 detail={"format": "csv", "version": 2, "rows": 1204})  # fmt: skip
    audit_record(actor=owner, action="dataset.deleted", project=p, target="old")
    audit_record(actor=manager, action="rule.created", project=p, target="flag outliers")
    audit_record(actor=manager, action="webhook.deleted", project=p, target="https://x.test/")
    audit_record(actor=team.user("scientist"), action="token.created", target="scientist1's token",
                 detail={"user_id": team.user("scientist").pk, "prefix": "lp_abc"})  # fmt: skip
    audit_record(actor=team.user("outsider"), action="member.added",
                 project=team.other_project, target="someone")  # fmt: skip
    return p


def rows_of(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# --- Who may read it -----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_sees_the_audit_page(persona, team, log, web_as):
    response = web_as(team.user(persona)).get("/audit/projects/cats-dogs/")
    assert response.status_code == expected(persona, Cap.AUDIT, 200)
    if response.status_code == 200:
        assert b"Role changed" in response.content


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_reads_the_audit_api(persona, team, log, api_as):
    response = api_as(team.user(persona)).get(f"/api/projects/{team.project.pk}/audit/")
    assert response.status_code == expected(persona, Cap.AUDIT, 200)


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_exports_the_audit_log(persona, team, log, web_as, api_as):
    page = web_as(team.user(persona)).get("/audit/projects/cats-dogs/?csv=1")
    api = api_as(team.user(persona)).get(f"/api/projects/{team.project.pk}/audit/?format=csv")
    assert page.status_code == api.status_code == expected(persona, Cap.AUDIT, 200)
    exports = AuditEvent.objects.filter(action="audit.exported").count()
    assert exports == (2 if page.status_code == 200 else 0)


def test_anonymous_is_sent_to_log_in_or_refused(team, client):
    assert client.get("/audit/projects/cats-dogs/").status_code == 302
    assert client.get(f"/api/projects/{team.project.pk}/audit/").status_code in (401, 403)


def test_the_project_page_links_the_log_for_owners_only(team, web_as):
    for persona in ("owner", "manager", "viewer"):
        page = web_as(team.user(persona)).get("/projects/cats-dogs/").content.decode()
        assert ("/audit/projects/cats-dogs/" in page) == (persona == "owner")


# --- What it shows ---------------------------------------------------------------------------


def test_the_api_lists_the_project_and_its_members_account_events_newest_first(team, log, api_as):
    response = api_as(team.user("owner")).get(f"/api/projects/{team.project.pk}/audit/")
    results = response.json()["results"]
    actions = [r["action"] for r in results]
    assert actions[:7] == [
        # api_as made the owner's token just now: an account event of a member.
        "token.created",
        "token.created",
        "webhook.deleted",
        "rule.created",
        "dataset.deleted",
        "dataset.exported",
        "member.role_changed",
    ]
    assert "member.added" not in actions  # the other project's
    first = results[-1]
    assert first["actor"] == "owner1" and first["target"] == "viewer1"
    assert first["detail"] == {"from": "viewer", "to": "manager"}
    assert first["summary"] == "Viewer → Manager"
    assert first["project"] == team.project.pk and first["project_name"] == "Cats and dogs"
    token = results[1]
    assert token["project"] is None and token["actor"] == "scientist1"


@pytest.mark.parametrize(
    ("family", "actions"),
    [
        ("roles", {"member.role_changed"}),
        ("exports", {"dataset.exported"}),
        ("deletions", {"dataset.deleted", "webhook.deleted"}),
        ("rules", {"rule.created"}),
        ("webhooks", {"webhook.deleted"}),
        ("tokens", {"token.created"}),
        ("dataset.exported", {"dataset.exported"}),
    ],
)
def test_filter_by_family(family, actions, team, log, web_as):
    response = web_as(team.user("owner")).get(f"/audit/projects/cats-dogs/?action={family}")
    shown = {row["event"].action for row in response.context["rows"]}
    assert shown == actions


def test_filter_by_actor_and_days(team, log, api_as):
    client = api_as(team.user("owner"))
    url = f"/api/projects/{team.project.pk}/audit/"
    by_manager = client.get(url, {"actor": "MANAGER1"}).json()["results"]
    assert {r["action"] for r in by_manager} == {
        "dataset.exported",
        "rule.created",
        "webhook.deleted",
    }
    old = AuditEvent.objects.get(action="dataset.deleted")
    AuditEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=40))
    today = timezone.localdate()
    earlier = (today - dt.timedelta(days=40)).isoformat()
    that_day = client.get(url, {"since": earlier, "until": earlier}).json()["results"]
    assert [r["action"] for r in that_day] == ["dataset.deleted"]
    recent = client.get(url, {"since": (today - dt.timedelta(days=1)).isoformat()}).json()
    assert "dataset.deleted" not in {r["action"] for r in recent["results"]}
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    assert client.get(url, {"since": tomorrow}).json()["results"] == []


def test_bad_filters_are_refused_by_the_api_and_shown_by_the_page(team, log, api_as, web_as):
    url = f"/api/projects/{team.project.pk}/audit/"
    client = api_as(team.user("owner"))
    assert client.get(url, {"since": "last week"}).status_code == 400
    assert client.get(url, {"action": "DROP TABLE"}).status_code == 400
    assert client.get(url, {"since": "2026-05-02", "until": "2026-05-01"}).status_code == 400
    assert client.get(url, {"format": "xml"}).status_code == 400
    page = web_as(team.user("owner")).get("/audit/projects/cats-dogs/?since=soon&action=exports")
    assert page.status_code == 200
    assert b"Enter a valid date" in page.content
    assert {row["event"].action for row in page.context["rows"]} == {"dataset.exported"}


def test_the_first_and_last_days_of_the_calendar_are_filters_not_errors(team, log, api_as, web_as):
    url = f"/api/projects/{team.project.pk}/audit/"
    client = api_as(team.user("owner"))
    everything = {"since": "0001-01-01", "until": "9999-12-31"}
    unfiltered = client.get(url).json()["results"]
    response = client.get(url, everything)
    assert response.status_code == 200
    assert response.json()["results"] == unfiltered
    assert client.get(url, {**everything, "format": "csv"}).status_code == 200
    page = web_as(team.user("owner")).get("/audit/projects/cats-dogs/", everything)
    assert page.status_code == 200
    assert len(page.context["rows"]) == len(unfiltered) + 1  # the CSV download since


def test_the_page_pages_newest_first_in_bounded_queries(
    team, web_as, django_assert_max_num_queries
):
    owner = team.user("owner")
    for i in range(60):
        audit_record(actor=owner, action="dataset.exported", project=team.project, target=f"d{i}")
    client = web_as(owner)
    client.get("/audit/projects/cats-dogs/")  # warm the session
    with django_assert_max_num_queries(8):
        first = client.get("/audit/projects/cats-dogs/")
    targets = [row["event"].target for row in first.context["rows"]]
    assert len(targets) == 50 and targets[0] == "d59" and targets[-1] == "d10"
    assert b"Older" in first.content
    with django_assert_max_num_queries(8):
        second = client.get("/audit/projects/cats-dogs/?page=2")
    assert [row["event"].target for row in second.context["rows"]] == [
        f"d{i}" for i in range(9, -1, -1)
    ]


def test_the_api_pages_in_bounded_queries(team, api_as, django_assert_max_num_queries):
    owner = team.user("owner")
    for i in range(60):
        audit_record(actor=owner, action="member.added", project=team.project, target=f"u{i}")
    client = api_as(owner)
    url = f"/api/projects/{team.project.pk}/audit/?page_size=25"
    with django_assert_max_num_queries(5):
        response = client.get(url)
    body = response.json()
    assert len(body["results"]) == 25 and body["next"]
    with django_assert_max_num_queries(5):
        more = client.get(body["next"])
    assert len(more.json()["results"]) == 25


def test_htmx_filters_swap_just_the_table(team, log, web_as):
    response = web_as(team.user("owner")).get(
        "/audit/projects/cats-dogs/?action=rules", headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="events"')
    assert "flag outliers" in html and "animals v2" not in html


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_has_the_header_and_the_filtered_rows_and_is_audited(team, log, web_as):
    response = web_as(team.user("owner")).get("/audit/projects/cats-dogs/?action=exports&csv=1")
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="cats-dogs-audit-' in response["Content-Disposition"]
    rows = rows_of(response)
    assert rows[0] == ["time", "actor", "action", "project", "target", "summary", "detail"]
    assert len(rows) == 2
    time, actor, action, project, target, line, detail = rows[1]
    assert (actor, action, project, target) == (
        "manager1",
        "dataset.exported",
        "Cats and dogs",
        "animals v2",
    )
    assert line == "CSV · v2 · 1,204 rows"
    assert dt.datetime.fromisoformat(time).tzinfo is not None
    assert '"rows": 1204' in detail
    event = AuditEvent.objects.get(action="audit.exported")
    assert (event.actor_name, event.project) == ("owner1", team.project)
    assert event.detail == {"format": "csv", "rows": 1, "filters": {"action": "exports"}}


def test_a_later_export_lists_the_earlier_one(team, log, api_as):
    client = api_as(team.user("owner"))
    url = f"/api/projects/{team.project.pk}/audit/?format=csv"
    first = rows_of(client.get(url))
    assert "audit.exported" not in {row[2] for row in first}
    second = rows_of(client.get(url))
    assert [row[2] for row in second].count("audit.exported") == 1
    assert len(second) == len(first) + 1


def test_csv_cells_cannot_run_as_formulas(team, api_as):
    audit_record(actor=team.user("owner"), action="dataset.deleted", project=team.project,
                 target="=HYPERLINK(\"http://x\")")  # fmt: skip
    rows = rows_of(
        api_as(team.user("owner")).get(f"/api/projects/{team.project.pk}/audit/?format=csv")
    )
    assert '\'=HYPERLINK("http://x")' in [row[4] for row in rows]


# --- Summaries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("detail", "line"),
    [
        ({"from": "viewer", "to": "owner"}, "Viewer → Owner"),
        ({"role": "scientist"}, "as Data scientist"),
        ({"format": "parquet", "version": 3, "rows": 10, "embeddings": "clip"}, "PARQUET · v3 · 10 rows · embeddings: clip"),
        ({"user_id": 4, "prefix": "lp_x", "via": "command"}, "prefix: lp_x · via: command"),
        ({"viewers": False}, "viewers: no"),
        ({"webhook": 3, "changes": {"url": ["https://a.test/", "https://b.test/"], "active": [True, False]}},
         "webhook: 3 · changes: url https://a.test/ → https://b.test/; active yes → no"),
        ({"rule": 2, "query": {"field": "label", "op": "=", "value": "cat"}, "ordering": ""},
         "rule: 2 · query: field=label, op==, value=cat"),
        ({"query": {"and": [{"field": "split", "op": "=", "value": "train"}] * 3}},
         'query: {"and":[{"field":"split","op":"=","value":"train"},{"field":"split","op":"=","v…'),
        ({"rows": 3, "filters": {"action": "exports", "actor": ""}}, "3 rows · filters: action=exports"),
        ({}, ""),
        (None, ""),
    ],
)  # fmt: skip
def test_summary_reads_as_one_line(detail, line):
    assert summary(detail) == line
