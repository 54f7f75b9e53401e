"""Single-label classification: an annotation is one class of the dataset's schema."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.annotations.base import MAX_LABEL_LENGTH, Problem
from apps.core.text import text_problem


def check(value: Any, *, schema: Sequence[str]) -> Problem | None:
    """Why `value` is not a class of the schema, or None."""
    if value in schema:
        return None
    if value is None:
        return Problem(f"Choose one of {', '.join(schema)}.")
    return Problem(f"Unknown label {value!r}; the schema has {', '.join(schema)}.", cls=value)


def check_class_name(name: str) -> str | None:
    """Why `name` cannot be a class of a schema, or None."""
    if problem := text_problem(name):
        return f"the label {problem}"
    if len(name) > MAX_LABEL_LENGTH:
        return f"the label is longer than {MAX_LABEL_LENGTH} characters"
    return None
