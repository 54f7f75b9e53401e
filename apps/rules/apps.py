from django.apps import AppConfig


class RulesConfig(AppConfig):
    name = "apps.rules"
    label = "rules"

    def ready(self) -> None:
        from apps.core import events
        from apps.rules import subscribers

        events.subscribe(subscribers.after_scoring, "scoring.finished", on_commit=True)
