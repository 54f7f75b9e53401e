"""A task goes through the real broker to a real worker process and back — not eager mode."""

from django.db import connection

from apps.config.tasks import ping, thread_pools
from workers.celery import app
from workers.threads import available_cores, pool_threads


def test_tasks_are_not_run_eagerly():
    assert not app.conf.task_always_eager


def test_task_round_trip_through_broker_and_worker(celery_worker_process):
    result = ping.apply_async(args=["hello"], queue=celery_worker_process.queue)
    answer = result.get(timeout=60)
    assert answer["marker"] == "hello"
    # The worker is another process, and it reached the same (test) database.
    assert answer["database"] == connection.settings_dict["NAME"]
    assert celery_worker_process.process.poll() is None


def test_a_worker_sizes_its_thread_pools_to_its_share_of_the_cores(celery_workers):
    (worker,) = celery_workers(1)  # one process (concurrency 1): every core is its own
    pools = thread_pools.apply_async(queue=worker.queue).get(timeout=60)
    assert {pool["api"] for pool in pools} >= {"openblas", "openmp"}
    assert {pool["threads"] for pool in pools} == {pool_threads(available_cores(), 1)}


def test_the_worker_threads_setting_overrides_the_share(celery_workers):
    (worker,) = celery_workers(1, LOUPE_WORKER_THREADS="1")
    pools = thread_pools.apply_async(queue=worker.queue).get(timeout=60)
    assert pools and {pool["threads"] for pool in pools} == {1}
