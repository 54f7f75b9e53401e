"""Thin Celery tasks: ids in, one service call."""

from workers.tasks.system import ping

__all__ = ["ping"]
