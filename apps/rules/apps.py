from django.apps import AppConfig

from apps.core import events


class RulesConfig(AppConfig):
    name = "apps.rules"
    label = "rules"

    def ready(self) -> None:
        # Panels and subscribers import the app's models, which load only once every app is
        # configured.
        from apps.explorer.actions import register
        from apps.rules import actions, panels, subscribers

        panels.register()
        register(actions.Notify())
        events.subscribe(subscribers.after_scoring, "scoring.finished", on_commit=True)
