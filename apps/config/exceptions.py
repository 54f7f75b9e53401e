"""Maps service errors to HTTP for the API: Django's ValidationError becomes 400 with fields."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": " ".join(exc.messages)}
        )
        exc = exceptions.ValidationError(detail=detail)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    # A refusal of no one field is one sentence under `detail`, the shape every error has.
    if isinstance(response.data, list):
        response.data = {"detail": " ".join(str(message) for message in response.data)}
    elif isinstance(response.data, dict) and isinstance(response.data.get("detail"), list):
        response.data["detail"] = " ".join(str(message) for message in response.data["detail"])
    return response


def error_text(exc: DjangoValidationError) -> str:
    """A service's ValidationError in one line, each field's messages after its name."""
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    return "; ".join(
        " ".join(messages) if field == "__all__" else f"{field}: {' '.join(messages)}"
        for field, messages in exc.message_dict.items()
    )
