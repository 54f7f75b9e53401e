"""The Celery app. Configuration comes from Django settings (CELERY_* names); each installed
app's tasks live in its own `tasks.py`, found by autodiscovery."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")

app = Celery("loupe")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
