from django.apps import AppConfig

from apps.core import events


class ReviewConfig(AppConfig):
    name = "apps.review"
    label = "review"

    def ready(self) -> None:
        # Subscribers import the app's models, which load only once every app is configured.
        from apps.review import subscribers

        events.subscribe(subscribers.feed_and_notify)
