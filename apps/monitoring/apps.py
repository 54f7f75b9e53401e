from django.apps import AppConfig

from apps.core import events


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"

    def ready(self) -> None:
        # Quality's methods page describes the drift check too, but quality sits below
        # monitoring and may not import it: monitoring hands its defaults over here.
        from apps.monitoring.views import method_parameters
        from apps.quality.views import METHOD_PARAMETER_SOURCES

        METHOD_PARAMETER_SOURCES["monitor"] = method_parameters

        # The drift service imports the app's models, which load only once every app is
        # configured. Windows waiting for a first scoring run are checked when it ends.
        from apps.monitoring.services.drift import scoring_finished

        events.subscribe(scoring_finished, "scoring.finished", on_commit=True)
