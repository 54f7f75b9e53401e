from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        from apps.core import events
        from apps.webhooks import services, subscribers

        events.subscribe(subscribers.deliver, *services.EVENTS)
