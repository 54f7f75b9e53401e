"""Reading webhooks and their delivery logs."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from apps.projects.models import Project
from apps.webhooks.models import Webhook, WebhookDelivery

RECENT = 50
LOG_PAGE = 100


def webhooks_of_project(project: Project, *, recent: int = RECENT) -> QuerySet[Webhook]:
    """The project's webhooks, each with its `recent` newest deliveries (payloads left out),
    in two queries however many webhooks there are."""
    latest = WebhookDelivery.objects.defer("payload").order_by("-id")[:recent]
    return (
        Webhook.objects.filter(project=project)
        .select_related("created_by")
        .prefetch_related(Prefetch("deliveries", queryset=latest, to_attr="recent"))
    )


def deliveries_of_webhook(webhook: Webhook, *, before: int | None = None) -> list[WebhookDelivery]:
    """A page of the webhook's delivery log, newest first, older than delivery `before`."""
    rows = WebhookDelivery.objects.filter(webhook=webhook).order_by("-id")
    if before is not None:
        rows = rows.filter(pk__lt=before)
    return list(rows[:LOG_PAGE])
