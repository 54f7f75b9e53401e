from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "apps.review"
    label = "review"

    def ready(self) -> None:
        # Models load only once the app registry is ready, so the panels are imported here.
        from apps.review import panels

        panels.register()
