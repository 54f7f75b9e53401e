from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"

    def ready(self) -> None:
        # Quality's methods page describes the drift check too, but quality sits below
        # monitoring and may not import it: monitoring hands its defaults over here.
        from apps.monitoring.views import method_parameters
        from apps.quality.views import METHOD_PARAMETER_SOURCES

        METHOD_PARAMETER_SOURCES["monitor"] = method_parameters
