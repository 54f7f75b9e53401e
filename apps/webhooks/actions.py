"""The webhooks' action on a selection: one delivery to a webhook of the project, with the
event that says the action was done (a rule's rule.fired), subscribed to it or not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from apps.datasets.models import Dataset
from apps.explorer.actions import Action, Selection
from apps.explorer.actions.checks import MAX_ID, positive_int
from apps.projects.capabilities import Cap
from apps.projects.models import Membership
from apps.webhooks.models import Webhook


class WebhookAction(Action):
    name = "webhook"
    cap = Cap.INTEGRATIONS
    takes = ("webhook",)
    label = "Call a webhook"
    rule = True
    form_template = "webhooks/rule_action_webhook.html"

    def form_context(self, dataset: Dataset, membership: Membership) -> dict[str, Any]:
        return {"webhooks": Webhook.objects.filter(project=dataset.project)}

    def clean(self, dataset: Dataset, settings: Mapping[str, Any]) -> dict[str, Any]:
        hook_id = positive_int(settings.get("webhook"), "webhook", high=MAX_ID)
        if not Webhook.objects.filter(pk=hook_id, project=dataset.project).exists():
            raise ValidationError({"webhook": "No such webhook in this project."})
        return {"webhook": hook_id}

    def perform(
        self,
        selection: Selection,
        settings: Mapping[str, Any],
        *,
        by: Any,
        detail: dict[str, Any],
        state: dict[str, Any] | None = None,
    ) -> None:
        """Only checks that the webhook can take the delivery: the event's subscriber in
        apps.webhooks.subscribers makes it."""
        webhook = Webhook.objects.filter(
            pk=settings["webhook"], project=selection.dataset.project_id
        ).first()
        if webhook is None:
            raise ValidationError({"webhook": "The rule's webhook is gone."})
        if not webhook.active:
            raise ValidationError({"webhook": f"The webhook to {webhook.url} is switched off."})
        if "rule.fired" in webhook.events:
            detail["delivery"] = "with the rule.fired event it subscribes to"

    def announce(
        self, dataset: Dataset, settings: Mapping[str, Any], *, text: str, url: str
    ) -> dict[str, Any]:
        return {"webhook": settings["webhook"]}
