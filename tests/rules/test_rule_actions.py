"""Every action a rule may take comes from the registry of actions on a selection."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from apps.explorer import actions
from apps.explorer.actions import Action
from apps.explorer.actions.checks import text
from apps.projects.capabilities import Cap
from apps.rules import services
from apps.rules.access import action_cap
from apps.rules.models import ActionType, Rule, RuleRun

CATS = {"field": "label", "op": "=", "value": "cat"}


def test_every_rule_action_type_is_registered_with_the_capability_it_needs():
    assert {kind: action_cap(kind) for kind in ActionType.values} == {
        "tag": Cap.EDIT_DATA,
        "review": Cap.CURATE,
        "vendor_batch": Cap.MANAGE_VENDORS,
        "active_pick": Cap.MANAGE_VENDORS,
        "notify": Cap.AUTOMATE,
        "webhook": Cap.INTEGRATIONS,
    }
    assert action_cap("no_such_action") is None


def test_the_sample_table_offers_tag_untag_relabel_and_remove():
    assert [(a.name, a.cap) for a in actions.offered()] == [
        ("tag", Cap.COMMENT),
        ("untag", Cap.COMMENT),
        ("relabel", Cap.CURATE),
        ("remove", Cap.CURATE),
    ]


class Star(Action):
    """An action no app has: it keeps what it starred, for the test to see."""

    name = "star"
    cap = Cap.COMMENT
    takes = ("reason",)
    label = "Star the samples"
    bulk = True
    rule = True

    def __init__(self) -> None:
        self.starred: list[tuple[str, set[int]]] = []

    def clean(self, dataset, settings):
        return {"reason": text(settings.get("reason"), "reason", limit=100)}

    def perform(self, selection, settings, *, by, detail, state=None):
        ids = set(selection.matching.values_list("pk", flat=True))
        self.starred.append((settings["reason"], ids))
        return len(ids)


@pytest.fixture
def star():
    action = actions.register(Star())
    yield action
    actions.unregister(action.name)


def test_a_registered_action_is_offered_to_rules_and_bulk_actions_with_nothing_else_changed(
    world, team, api_as, star
):
    dataset, _run, _rows = world
    cats = set(dataset.samples.filter(label="cat").values_list("pk", flat=True))
    owner = api_as(team.user("owner"))

    created = owner.post(
        f"/api/datasets/{dataset.pk}/rules/",
        {"name": "stars", "query": CATS, "action": {"type": "star", "reason": "shiny"}},
        format="json",
    )
    assert created.status_code == 201, created.content
    rule = Rule.objects.get(pk=created.json()["id"])
    assert rule.action == {"type": "star", "reason": "shiny"}
    assert rule.get_action_type_display() == "Star the samples"
    dry = owner.post(f"/api/rules/{rule.pk}/dry-run/")
    assert dry.status_code == 200, dry.content
    assert set(dry.json()["sample_ids"]) == cats and star.starred == []
    services.rule_enable(rule=rule, by=team.user("owner"))
    record = services.rule_run(rule_id=rule.pk, why=RuleRun.Why.MANUAL)
    assert record is not None and record.acted_on == len(cats)
    assert star.starred == [("shiny", cats)]

    # The rule form offers it, with its fields read as "<type>_<setting>".
    page = Client()
    page.force_login(team.user("owner"))
    form = page.get(f"/rules/datasets/{dataset.pk}/").content.decode()
    assert '<option value="star">Star the samples</option>' in form
    posted = page.post(
        f"/rules/datasets/{dataset.pk}/",
        {"name": "more stars", "query": "", "action_type": "star", "star_reason": " bright "},
    )
    assert posted.status_code == 302
    assert Rule.objects.get(name="more stars").action == {"type": "star", "reason": "bright"}

    bulk = owner.post(
        f"/api/datasets/{dataset.pk}/samples/bulk/",
        {"action": "star", "q": CATS, "reason": "by hand"},
        format="json",
    )
    assert bulk.status_code == 200, bulk.content
    assert bulk.json() == {"action": "star", "changed": len(cats)}
    assert star.starred[-1] == ("by hand", cats)


def test_a_rule_refuses_an_action_type_no_app_registered(world, team):
    dataset, _run, _rows = world
    with pytest.raises(ValidationError) as refused:
        services.rule_create(
            dataset=dataset, by=team.user("owner"), name="x", query={}, action={"type": "star"}
        )
    assert refused.value.message_dict == {
        "action": [
            "Unknown action type 'star'; use one of tag, review, vendor_batch, active_pick, "
            "notify, webhook."
        ]
    }
