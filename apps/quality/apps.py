from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "apps.quality"
    label = "quality"

    def ready(self) -> None:
        # Models load only once the app registry is ready, so the panels are imported here.
        from apps.quality import panels

        panels.register()
