"""Tasks that check the worker itself."""

from celery import shared_task
from django.db import connection


@shared_task(name="loupe.ping", ignore_result=False, time_limit=30, soft_time_limit=25)
def ping(marker: str) -> dict:
    """Answer with the marker, the worker's host name and that the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (database,) = cursor.fetchone()
    return {"marker": marker, "database": database}
