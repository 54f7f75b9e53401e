"""A task goes through the real broker to a real worker process and back — not eager mode."""

from django.db import connection

from apps.config.tasks import ping
from workers.celery import app


def test_tasks_are_not_run_eagerly():
    assert not app.conf.task_always_eager


def test_task_round_trip_through_broker_and_worker(celery_worker_process):
    result = ping.apply_async(args=["hello"], queue=celery_worker_process.queue)
    answer = result.get(timeout=60)
    assert answer["marker"] == "hello"
    # The worker is another process, and it reached the same (test) database.
    assert answer["database"] == connection.settings_dict["NAME"]
    assert celery_worker_process.process.poll() is None
