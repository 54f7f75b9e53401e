from django.apps import AppConfig

from apps.core import events


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        # Subscribers and actions import the app's models, which load only once every app is
        # configured.
        from apps.explorer.actions import register
        from apps.webhooks import actions, services, subscribers

        events.subscribe(subscribers.deliver, *services.EVENTS)
        register(actions.WebhookAction())
