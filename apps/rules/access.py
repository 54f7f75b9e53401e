"""Fetch a rule the user may see, and say which capability each action needs."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.explorer import actions
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.projects.models import Membership
from apps.rules.models import Rule


def action_cap(action_type: str) -> Cap | None:
    """What a rule's action needs of its author (None for an unknown one). A rule does what its
    author could do by hand: changing a rule needs AUTOMATE and this, and a run checks the
    author still has both."""
    action = actions.find(action_type)
    if action is None:
        return None
    return action.unattended_cap or action.cap


def may_set_action(membership: Membership | None, action_type: str) -> bool:
    cap = action_cap(action_type)
    return (
        membership is not None
        and membership.can(Cap.AUTOMATE)
        and (cap is None or membership.can(cap))
    )


def check_action(membership: Membership, action_type: str) -> None:
    if not may_set_action(membership, action_type):
        raise PermissionDenied("Your role in this project cannot set up this action.")


def get_rule_for_user(user, pk: int, *, need: Cap = Cap.VIEW) -> Rule:
    """The rule, if the user's role in its project may `need`; 404 if they may not see it.
    Changing a rule (need=AUTOMATE) also needs the capability of its action."""
    rule = Rule.objects.select_related("project", "dataset", "created_by").filter(pk=pk).first()
    if rule is None:
        raise Http404("No such rule.")
    membership = get_membership_for_user(user, pk=rule.project_id, need=need)
    if need == Cap.AUTOMATE:
        check_action(membership, rule.action_type)
    return rule
