from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "apps.quality"
    label = "quality"

    def ready(self) -> None:
        # Models load only once the app registry is ready, so the panels are imported here.
        from apps.core import events
        from apps.quality import panels, subscribers

        panels.register()
        events.subscribe(
            subscribers.score_after_change, "version.committed", "dataset.imported", on_commit=True
        )
