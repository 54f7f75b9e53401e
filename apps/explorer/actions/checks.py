"""Checks of an action's settings, each with the message a wrong value gets."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

MAX_ID = 2**31 - 1  # the largest primary key a setting may name


def positive_int(value: Any, name: str, *, low: int = 1, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: f"{name} must be a whole number."}) from None
    if not low <= number <= high:
        raise ValidationError({name: f"{name} must be between {low:,} and {high:,}."})
    return number


def text(value: Any, name: str, *, limit: int) -> str:
    """An optional piece of text: a string (or nothing), cut to `limit` characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError({name: f"{name} must be text."})
    return value.strip()[:limit]


def names(value: Any, name: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError({name: f"{name} must be a list of {what}."})
    return list(dict.fromkeys(value))


def money(value: Any, name: str) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError({name: f"{name} must be an amount, like 250 or 12.50."}) from None
    if not amount.is_finite() or amount <= 0:
        raise ValidationError({name: f"{name} must be more than 0."})
    return str(amount)
