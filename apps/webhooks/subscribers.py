"""Webhook deliveries of the events the other apps record."""

from __future__ import annotations

from apps.core.events import Event
from apps.webhooks import services
from apps.webhooks.models import Webhook


def deliver(event: Event) -> dict | None:
    """Queue a delivery to each active webhook subscribed to the event, and to the event's own
    webhook (a rule's webhook action) when it is not subscribed; the rows are written in the
    recording transaction, and the messages sent after it commits."""
    services.event_emit(project=event.project, event=event.name, payload=dict(event.payload))
    if event.webhook is None:
        return None
    webhook = Webhook.objects.get(pk=event.webhook, project=event.project)
    if event.name in webhook.events:  # the delivery above reached it
        return None
    delivery = services.delivery_create(
        webhook=webhook, event=event.name, payload=dict(event.payload)
    )
    return {"delivery": delivery.pk}
