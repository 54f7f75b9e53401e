"""Text PostgreSQL can store: one check for every place that takes text from outside."""

from __future__ import annotations


def text_problem(value: str) -> str | None:
    """Why PostgreSQL would refuse this text, or None: NUL, or a lone surrogate (JSON lets a
    string escape one, e.g. "\\ud800", and psycopg cannot encode it)."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None
