"""Thin Celery tasks: ids in, one service call."""

from workers.tasks.datasets import run_import
from workers.tasks.system import ping

__all__ = ["ping", "run_import"]
