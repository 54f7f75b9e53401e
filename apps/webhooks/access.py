"""Who may reach a webhook: members whose role manages webhooks (owners and managers). Another
member who may see the project gets 403; a vendor, an outsider or a missing webhook, 404."""

from __future__ import annotations

from django.http import Http404

from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.webhooks.models import Webhook


def get_webhook_for_user(user, webhook_id: int, *, need: Cap = Cap.INTEGRATIONS) -> Webhook:
    webhook = Webhook.objects.select_related("project").filter(pk=webhook_id).first()
    if webhook is None:
        raise Http404("No such webhook.")
    get_membership_for_user(user, pk=webhook.project_id, need=need)
    return webhook
