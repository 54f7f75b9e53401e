from django.apps import AppConfig

from apps.core import events


class ReviewConfig(AppConfig):
    name = "apps.review"
    label = "review"

    def ready(self) -> None:
        # Panels and subscribers import the app's models, which load only once every app is
        # configured.
        from apps.explorer.actions import register
        from apps.review import actions, panels, subscribers

        panels.register()
        register(actions.ReviewSessionAction())
        events.subscribe(subscribers.feed_and_notify)
