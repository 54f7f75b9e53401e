from django.apps import AppConfig

from apps.core import events


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"

    def ready(self) -> None:
        # Panels and subscribers import the app's models, which load only once every app is
        # configured.
        from apps.datasets import panels, subscribers

        panels.register()
        events.subscribe(subscribers.project_deleting, "project.deleting")
