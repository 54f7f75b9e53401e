from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "apps.quality"
    label = "quality"

    def ready(self) -> None:
        # Models load only once the app registry is ready, so the panels are imported here.
        from apps.core.panels import panel_register
        from apps.quality.panels import scoring_context

        panel_register("dataset.aside", template="quality/scoring.html", context=scoring_context)
