"""Every action a rule may take comes from the registry of actions on a selection."""

from apps.explorer import actions
from apps.projects.capabilities import Cap
from apps.rules.access import action_cap
from apps.rules.models import ActionType


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
