"""Queueing a follow-up task from inside a task or a request."""

from __future__ import annotations

from django.db import transaction


def send_after_commit(task_name: str, *args) -> None:
    """Queue a task once the transaction commits, on the queue the current task came from (a
    worker serving one queue keeps the follow-ups of its work on it)."""
    from celery import current_task

    from workers.celery import app

    queue = None
    if current_task and current_task.request.delivery_info:
        queue = current_task.request.delivery_info.get("routing_key")
    transaction.on_commit(lambda: app.send_task(task_name, args=args, queue=queue))
