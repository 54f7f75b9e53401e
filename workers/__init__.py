"""Celery workers: the Celery app and the quality engine's pure kernels (tasks live in their apps)."""

from workers.celery import app as celery_app

__all__ = ["celery_app"]
