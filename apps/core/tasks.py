"""Queueing a Celery task by name once the current transaction commits: the one way to enqueue."""

from __future__ import annotations

from typing import Any

from celery import current_task
from django.db import transaction

from workers.celery import app


def task_enqueue(name: str, *args: Any, robust: bool = False, **options: Any) -> None:
    """Send the task called `name` with `args` once the transaction commits (at once outside
    one), so a worker never looks for rows that are not committed yet.

    By name, so that services never import tasks (tasks import services). A follow-up queued
    from inside a task goes to the queue that task came from, unless `queue` is given: a worker
    serving one queue keeps the follow-ups of its work on it. Other `options` (`countdown`,
    `eta`, ...) go to `send_task`. With `robust`, a broker that cannot be reached is logged
    instead of raised, for callers whose work a sweep finds and queues again anyway.
    """
    if "queue" not in options and current_task and current_task.request.delivery_info:
        options["queue"] = current_task.request.delivery_info.get("routing_key")
    transaction.on_commit(lambda: app.send_task(name, args=args, **options), robust=robust)
