from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"

    def ready(self) -> None:
        # The panel imports the app's models, which load only once every app is configured.
        from apps.reports import panels

        panels.register()
