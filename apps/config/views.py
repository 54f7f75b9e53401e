"""Site-wide endpoints: the health check, and the answer to a request Django cannot read."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import connection
from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.cache import never_cache

from workers.celery import app as celery_app


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means the database is not answering
        return f"error: {exc.__class__.__name__}"


def _broker_state() -> str:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"error: {exc.__class__.__name__}"


@never_cache
def healthz(request):
    state = {"database": _database_state(), "broker": _broker_state()}
    healthy = all(v == "ok" for v in state.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **state}, status=200 if healthy else 503
    )


def bad_request(request, exception=None):
    """Django's own 400 (a body past its limits, say): JSON with `detail` under /api/, like
    every other API error, and the usual page elsewhere."""
    if not request.path.startswith("/api/"):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        detail = f"The body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes."
    elif isinstance(exception, TooManyFieldsSent):
        detail = f"The body has over {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields; send long lists as JSON."
    elif isinstance(exception, TooManyFilesSent):
        detail = f"The body has over {settings.DATA_UPLOAD_MAX_NUMBER_FILES:,} files."
    else:
        detail = "The request could not be read."
    return JsonResponse({"detail": detail}, status=400)
