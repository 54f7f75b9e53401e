from django.apps import AppConfig


class RulesConfig(AppConfig):
    name = "apps.rules"
    label = "rules"

    def ready(self) -> None:
        # Models load only once the app registry is ready, so the panels are imported here.
        from apps.rules import panels

        panels.register()
