"""What a value from outside (an import file, the production API) may be before it is stored:
ids of bounded length, text PostgreSQL can hold, JSON of bounded depth, and image paths that
stay inside their dataset's media."""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal
from typing import Any

import numpy as np

from apps.core.text import text_problem

# 4 bytes a character at most: the unique (dataset, id) index holds ~2,700 bytes a key.
MAX_ID_LENGTH = 500
MAX_VECTOR_DIMENSIONS = 16_000  # pgvector's vector type holds no more
# Deep enough for any real metadata; shallow enough that JSON encoders and PostgreSQL's jsonb
# parser (which recurse) never run out of stack.
MAX_METADATA_DEPTH = 32
# Besides JSON's own types, what Parquet and NumPy hand over and the loader turns into JSON.
_JSON_READY = (str, int, float, bool, type(None), date, time, Decimal, np.generic)
_DRIVE_OR_SCHEME = re.compile(r"^(?:[A-Za-z]:|[A-Za-z][A-Za-z0-9+.-]*://)")


def json_problem(value: Any, *, depth: int = 1) -> str | None:
    """Why a JSON value (keys included) cannot be stored, or None. `depth` is the nesting level
    `value` itself sits at. Walked with a stack, not recursion: a value nested thousands of
    levels deep must be refused, not crash the check."""
    stack = [(value, depth)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            if problem := text_problem(item):
                return f"a value {problem}"
        elif isinstance(item, dict | list | tuple):
            if level > MAX_METADATA_DEPTH:
                return f"is nested more than {MAX_METADATA_DEPTH} levels deep"
            if isinstance(item, dict):
                for key in item:
                    if isinstance(key, str) and (problem := text_problem(key)):
                        return f"the key {key!r} {problem}"
                stack.extend((v, level + 1) for v in item.values())
            else:
                stack.extend((v, level + 1) for v in item)
        elif not isinstance(item, _JSON_READY):
            return f"holds a value of type {type(item).__name__}, which JSON cannot hold"
    return None


def id_problem(value: str) -> str | None:
    """Why an external id cannot be stored, or None; the same limit wherever ids come in."""
    if problem := text_problem(value):
        return f"the id {problem}"
    if len(value) > MAX_ID_LENGTH:
        return f"the id has {len(value):,} characters; at most {MAX_ID_LENGTH} are allowed"
    return None


def image_path(value: str) -> str:
    """The image path in one normal form ('a/b.png': no '.' or empty segments), or ValueError
    saying why it would reach outside the dataset's media and is refused."""
    if problem := text_problem(value):
        raise ValueError(f"the image path {problem}")
    path = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise ValueError("the image path contains control characters")
    if "\\" in path:
        raise ValueError("the image path contains a backslash; separate folders with '/'")
    if path.startswith("/") or _DRIVE_OR_SCHEME.match(path):
        raise ValueError(
            "the image path is absolute or a URL; give a path inside the dataset's media"
        )
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError("the image path climbs out with '..'")
    if not parts:
        raise ValueError("the image path is empty")
    return "/".join(parts)
