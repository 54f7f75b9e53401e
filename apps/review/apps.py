from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "apps.review"
    label = "review"

    def ready(self) -> None:
        from apps.core import events
        from apps.review import subscribers

        events.subscribe(subscribers.feed_and_notify)
