"""The explorer app: it reads datasets and quality; neither of them reads it."""

from django.apps import AppConfig


class ExplorerConfig(AppConfig):
    name = "apps.explorer"
    label = "explorer"

    def ready(self) -> None:
        # The actions import the app's models, which load only once every app is configured.
        from apps.explorer.actions import register, samples

        register(samples.Tag())
        register(samples.Untag())
        register(samples.Relabel())
        register(samples.Remove())
