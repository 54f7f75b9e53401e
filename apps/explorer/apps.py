"""The explorer app: it reads datasets and quality; neither of them reads it."""

from django.apps import AppConfig


class ExplorerConfig(AppConfig):
    name = "apps.explorer"
    label = "explorer"
