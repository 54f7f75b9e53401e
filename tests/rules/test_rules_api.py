"""Every rule endpoint and page tried as every persona, and the API's errors name the field."""

from __future__ import annotations

import json

import pytest

from apps.projects.capabilities import Cap
from apps.rules import services
from apps.rules.models import Rule
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected

CATS = {"field": "label", "op": "=", "value": "cat"}
TAG = {"type": "tag", "tag": "suspect"}


@pytest.fixture
def rule(world, team):
    dataset, _run, _rows = world
    rule = services.rule_create(
        dataset=dataset, by=team.user("owner"), name="cats", query=CATS, action=TAG
    )
    services.rule_dry_run(rule=rule)
    return rule


API = [
    ("get", "/api/datasets/{d}/rules/", None, Cap.VIEW, 200),
    ("post", "/api/datasets/{d}/rules/", {"name": "dogs", "query": {"field": "label", "op": "=", "value": "dog"}, "action": TAG}, Cap.AUTOMATE, 201),
    ("get", "/api/rules/{r}/", None, Cap.VIEW, 200),
    ("patch", "/api/rules/{r}/", {"name": "renamed"}, Cap.AUTOMATE, 200),
    ("post", "/api/rules/{r}/dry-run/", None, Cap.AUTOMATE, 200),
    ("post", "/api/rules/{r}/enable/", None, Cap.AUTOMATE, 200),
    ("post", "/api/rules/{r}/disable/", None, Cap.AUTOMATE, 200),
    ("post", "/api/rules/{r}/run/", None, Cap.AUTOMATE, 202),
    ("get", "/api/rules/{r}/runs/", None, Cap.VIEW, 200),
    ("delete", "/api/rules/{r}/", None, Cap.AUTOMATE, 204),
]  # fmt: skip


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body,cap,ok", API)
def test_api_as_every_role(persona, method, template, body, cap, ok, world, team, rule, api_as):
    dataset, _run, _rows = world
    url = template.format(d=dataset.pk, r=rule.pk)
    response = getattr(api_as(team.user(persona)), method)(url, body, format="json")
    assert response.status_code == expected(persona, cap, ok), response.content[:300]


PAGES = [
    ("get", "/rules/datasets/{d}/", {}, Cap.VIEW, 200),
    ("post", "/rules/datasets/{d}/", {"name": "dogs", "query": '{"field": "label", "op": "=", "value": "dog"}', "trigger": "after_scoring", "action_type": "tag", "tag_tag": "dog"}, Cap.AUTOMATE, 302),
    ("get", "/rules/{r}/", {}, Cap.VIEW, 200),
    ("post", "/rules/{r}/dry-run/", {}, Cap.AUTOMATE, 302),
    ("post", "/rules/{r}/enable/", {}, Cap.AUTOMATE, 302),
    ("post", "/rules/{r}/disable/", {}, Cap.AUTOMATE, 302),
    ("post", "/rules/{r}/run/", {}, Cap.AUTOMATE, 302),
    ("post", "/rules/{r}/edit/", {"name": "cats", "query": "", "trigger": "after_scoring", "action_type": "tag", "tag_tag": "x"}, Cap.AUTOMATE, 302),
    ("post", "/rules/{r}/delete/", {}, Cap.AUTOMATE, 302),
]  # fmt: skip


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body,cap,ok", PAGES)
def test_pages_as_every_role(persona, method, template, body, cap, ok, world, team, rule, web_as):
    dataset, _run, _rows = world
    response = getattr(web_as(team.user(persona)), method)(
        template.format(d=dataset.pk, r=rule.pk), body
    )
    assert response.status_code == expected(persona, cap, ok), response.content[:300]


def test_an_action_needs_its_own_capability_too(world, team, api_as, vendor):
    """A scientist may automate, but not spend on vendors: such a rule is theirs to read only."""
    dataset, _run, _rows = world
    batch = {"type": "vendor_batch", "vendor": vendor.pk, "budget": "10"}
    as_scientist = api_as(team.user("scientist"))
    body = {"name": "spend", "query": CATS, "action": batch}
    assert (
        as_scientist.post(f"/api/datasets/{dataset.pk}/rules/", body, format="json").status_code
        == 403
    )
    rule = services.rule_create(
        dataset=dataset, by=team.user("manager"), name="spend", query=CATS, action=batch
    )
    assert as_scientist.get(f"/api/rules/{rule.pk}/").status_code == 200
    assert as_scientist.post(f"/api/rules/{rule.pk}/dry-run/").status_code == 403
    # Nor can they turn a tag rule of theirs into a spending one.
    mine = services.rule_create(
        dataset=dataset, by=team.user("scientist"), name="mine", query=CATS, action=TAG
    )
    response = as_scientist.patch(f"/api/rules/{mine.pk}/", {"action": batch}, format="json")
    assert response.status_code == 403
    assert Rule.objects.get(pk=mine.pk).action == TAG


def test_api_errors_name_the_field_and_change_nothing(world, team, api_as):
    dataset, _run, _rows = world
    owner = api_as(team.user("owner"))
    url = f"/api/datasets/{dataset.pk}/rules/"
    bad = [
        (
            {"name": "x", "query": {"field": "colour", "op": "=", "value": 1}, "action": TAG},
            "query",
        ),
        ({"name": "x", "query": CATS, "action": {"type": "tag"}}, "tag"),
        ({"name": "x", "query": CATS, "action": TAG, "trigger": "hourly"}, "trigger"),
        ({"name": "x", "query": CATS, "action": TAG, "trigger": "schedule"}, "schedule_minutes"),
        ({"query": CATS, "action": TAG}, "name"),
    ]
    for body, field in bad:
        response = owner.post(url, body, format="json")
        assert response.status_code == 400 and field in response.json(), response.json()
    assert not Rule.objects.exists()


def test_enable_before_a_dry_run_is_refused_with_the_reason(world, team, api_as):
    dataset, _run, _rows = world
    owner = api_as(team.user("owner"))
    made = owner.post(
        f"/api/datasets/{dataset.pk}/rules/",
        {"name": "cats", "query": CATS, "action": TAG},
        format="json",
    ).json()
    assert made["enabled"] is False
    listed = owner.get(f"/api/datasets/{dataset.pk}/rules/").json()
    assert [r["id"] for r in listed["results"]] == [made["id"]] and listed["next"] is None
    refused = owner.post(f"/api/rules/{made['id']}/enable/")
    assert refused.status_code == 400 and "Dry-run" in json.dumps(refused.json())
    dry = owner.post(f"/api/rules/{made['id']}/dry-run/").json()
    assert dry["would_act_on"] == dry["matched"] > 0 and len(dry["preview"]) <= 10
    assert owner.post(f"/api/rules/{made['id']}/enable/").json()["enabled"] is True


def test_the_new_rule_form_takes_the_query_of_the_sample_table(world, team, web_as):
    dataset, _run, _rows = world
    client = web_as(team.user("owner"))
    page = client.get(f"/rules/datasets/{dataset.pk}/", {"q": json.dumps(CATS)})
    assert page.status_code == 200
    assert "&quot;cat&quot;" in page.content.decode()
    # A bad query comes back with the form as typed, and the error.
    response = client.post(
        f"/rules/datasets/{dataset.pk}/",
        {"name": "oops", "query": "{not json", "action_type": "tag", "tag_tag": "t"},
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "not valid JSON" in text and 'value="oops"' in text
    assert not Rule.objects.exists()


def test_the_rule_page_shows_the_dry_run_and_the_log(world, team, rule, web_as):
    client = web_as(team.user("owner"))
    dry = client.post(f"/rules/{rule.pk}/dry-run/", HTTP_HX_REQUEST="true")
    text = dry.content.decode()
    assert dry.status_code == 200 and 'id="dryrun"' in text
    assert f'data-would="{services.rule_dry_run(rule=rule)["would_act_on"]}"' in text
    services.rule_run(rule_id=rule.pk)
    page = client.get(f"/rules/{rule.pk}/").content.decode()
    assert "Run by hand" in page and 'data-run="' in page


def test_the_rule_form_offers_a_scientist_no_webhooks_or_vendors(world, team, web_as, vendor):
    from apps.webhooks.services import webhook_create

    dataset, _run, _rows = world
    webhook_create(
        project=team.project, by=team.user("owner"), url="https://hooks.example.com/secret-path",
        events=["rule.fired"],
    )  # fmt: skip
    as_scientist = web_as(team.user("scientist")).get(f"/rules/datasets/{dataset.pk}/")
    text = as_scientist.content.decode()
    assert "secret-path" not in text and vendor.name not in text
    assert 'value="vendor_batch"' not in text and 'value="webhook"' not in text
    as_owner = web_as(team.user("owner")).get(f"/rules/datasets/{dataset.pk}/").content.decode()
    assert "secret-path" in as_owner and vendor.name in as_owner
