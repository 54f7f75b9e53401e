"""Tasks that check the worker itself."""

from celery import shared_task
from django.db import connection
from threadpoolctl import threadpool_info

from workers.threads import load_native_libraries


@shared_task(name="loupe.ping", ignore_result=False, time_limit=30, soft_time_limit=25)
def ping(marker: str) -> dict:
    """Answer with the marker, the worker's host name and that the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (database,) = cursor.fetchone()
    return {"marker": marker, "database": database}


@shared_task(name="loupe.thread_pools", ignore_result=False, time_limit=60, soft_time_limit=55)
def thread_pools() -> list[dict]:
    """The BLAS and OpenMP pools this worker process has loaded, with their thread counts."""
    load_native_libraries()
    return [
        {"api": pool["internal_api"], "library": pool["filepath"], "threads": pool["num_threads"]}
        for pool in threadpool_info()
    ]
