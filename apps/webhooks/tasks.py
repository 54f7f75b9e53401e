"""Webhook jobs: ids in, one service call."""

from celery import shared_task

from apps.webhooks import services


# The transport gives up within 45 s; the limits only stop a send that hangs anyway, and stay
# under the delivery's lease so that no one else sends it meanwhile.
@shared_task(name="loupe.webhooks.deliver", acks_late=True, time_limit=120, soft_time_limit=110)
def deliver_webhook(delivery_id: int) -> None:
    services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="loupe.webhooks.retry_due", time_limit=300, soft_time_limit=280)
def retry_webhooks() -> None:
    services.deliveries_retry_due()
