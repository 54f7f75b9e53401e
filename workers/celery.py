"""The Celery app. Configuration comes from Django settings (CELERY_* names); each installed
app's tasks live in its own `tasks.py`, found by autodiscovery."""

import logging
import os
from typing import Any

from celery import Celery, signals
from celery.concurrency.solo import TaskPool as SoloPool
from celery.concurrency.thread import TaskPool as ThreadPool
from django.conf import settings
from threadpoolctl import threadpool_limits

from workers.threads import available_cores, load_native_libraries, pool_threads

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")

app = Celery("loupe")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)
_worker: Any = None  # the WorkController of this worker, once it starts


@signals.worker_init.connect
def _remember_worker(sender: Any = None, **kwargs: Any) -> None:
    global _worker
    _worker = sender


def _pool_class() -> Any:
    return getattr(_worker, "pool_cls", None)


def size_thread_pools() -> int:
    """Limit this process's BLAS/OpenMP pools to its share of the cores; the size chosen."""
    pool_cls = _pool_class()
    if isinstance(pool_cls, type) and issubclass(pool_cls, SoloPool):
        processes = 1  # a solo worker runs one task at a time, whatever its concurrency says
    else:
        processes = int(getattr(_worker, "concurrency", None) or app.conf.worker_concurrency or 1)
    cores = available_cores()
    threads = pool_threads(cores, processes, settings.LOUPE_WORKER_THREADS)
    # Libraries loaded later would start with every core; load them now so the limit holds.
    load_native_libraries()
    threadpool_limits(limits=threads)
    how = (
        "LOUPE_WORKER_THREADS"
        if settings.LOUPE_WORKER_THREADS is not None
        else f"{cores} cores / {processes} concurrent tasks"
    )
    logger.info("BLAS/OpenMP thread pools of worker process %d: %d (%s)", os.getpid(), threads, how)
    return threads


@signals.worker_process_init.connect
def _size_process_pools(**kwargs: Any) -> None:
    # Sent in each prefork child as it starts, and in the main process of a solo worker.
    size_thread_pools()


@signals.worker_ready.connect
def _size_threads_pool(**kwargs: Any) -> None:
    # A threads-pool worker runs its tasks in the main process and sends no worker_process_init.
    pool_cls = _pool_class()
    if isinstance(pool_cls, type) and issubclass(pool_cls, ThreadPool):
        size_thread_pools()
