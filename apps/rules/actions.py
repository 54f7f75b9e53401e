"""The rules' own action on a selection: notify members by role that a rule fired."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from apps.core import events
from apps.datasets.models import Dataset
from apps.explorer.actions import Action, Selection
from apps.explorer.actions.checks import names, text
from apps.projects.capabilities import Cap, Role
from apps.projects.models import Membership
from apps.review.models import Notification

NOTIFY_ROLES = (Role.OWNER, Role.MANAGER, Role.SCIENTIST)
STAFF_ROLES = (Role.OWNER, Role.MANAGER, Role.SCIENTIST, Role.REVIEWER, Role.VIEWER)


class Notify(Action):
    """Tell the project's members of some roles. The notice rides on the event that says the
    action was done (a rule's rule.fired), so perform has nothing to do of its own."""

    name = "notify"
    cap = Cap.AUTOMATE
    takes = ("roles", "message")
    label = "Notify members"
    rule = True
    form_template = "rules/rule_action_notify.html"
    form_lists = ("roles",)

    def clean(self, dataset: Dataset, settings: Mapping[str, Any]) -> dict[str, Any]:
        roles = names(settings.get("roles") or list(NOTIFY_ROLES), "roles", "roles")
        if any(r not in STAFF_ROLES for r in roles):
            raise ValidationError(
                {"roles": f"Notify members by role: {', '.join(r.value for r in STAFF_ROLES)}."}
            )
        clean: dict[str, Any] = {"roles": sorted(set(roles))}
        if message := text(settings.get("message"), "message", limit=200):
            clean["message"] = message
        return clean

    def form_context(self, dataset: Dataset, membership: Membership) -> dict[str, Any]:
        return {"roles": [(r.value, r.label) for r in STAFF_ROLES]}

    def form_defaults(self) -> dict[str, Any]:
        return {"roles": [r.value for r in NOTIFY_ROLES]}

    def perform(
        self,
        selection: Selection,
        settings: Mapping[str, Any],
        *,
        by: Any,
        detail: dict[str, Any],
        state: dict[str, Any] | None = None,
    ) -> None:
        return None

    def announce(
        self, dataset: Dataset, settings: Mapping[str, Any], *, text: str, url: str
    ) -> dict[str, Any]:
        people = tuple(
            m.user
            for m in Membership.objects.filter(
                project_id=dataset.project_id, role__in=settings["roles"]
            ).select_related("user")
        )
        notice = events.Notice(
            users=people, kind=Notification.Kind.RULE, text=settings.get("message") or text, url=url
        )
        return {"notice": notice}
