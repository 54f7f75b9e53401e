"""JSON from users, read safely: a depth limit (Python's json recurses and would end in a
RecursionError, a 500) and a check for text PostgreSQL cannot store."""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

from apps.core.text import text_problem

# Far beyond any body or query of the API (a query nests at most 12 levels), far below the
# interpreter's recursion limit.
MAX_JSON_DEPTH = 64


class JSONTooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")


def json_depth_check(value: Any) -> Any:
    """`value` itself, or JSONTooDeep when its arrays and objects nest past the limit."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise JSONTooDeep()
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def json_loads(text: str | bytes, **kwargs) -> Any:
    """json.loads with the depth limit: JSONTooDeep (a ValueError) past it."""
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:
        raise JSONTooDeep() from None
    return json_depth_check(value)


def storable_text(value: Any) -> bool:
    """No text in `value`, keys included, that PostgreSQL refuses (NUL, a lone surrogate)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if text_problem(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the depth limit; every API endpoint reads JSON through it."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            return json_loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
