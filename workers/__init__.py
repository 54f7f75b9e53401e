"""Celery workers: the app, thin tasks, and the quality engine's pure kernels."""

from workers.celery import app as celery_app

__all__ = ["celery_app"]
