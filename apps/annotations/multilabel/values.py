"""Multi-label classification: an annotation is a set of classes of the dataset's schema, the
empty set included (labelled, with no class).

Canonical form `{"classes": [...]}`, the classes unique and sorted by code point, so that "the
same annotation" is plain equality, in Python and as jsonb. The key, stored in the `label`
columns, is the classes joined by `|` (`billing|refund`), `∅` for the empty set, cut to
MAX_KEY_LENGTH characters. In a CSV cell a set is written `a|b`, or as a JSON list (`[]` or `∅`
for the empty set); an empty cell is unlabelled."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, TypeAlias

from apps.annotations.base import MAX_KEY_LENGTH, MAX_LABEL_LENGTH, Problem
from apps.core.text import text_problem

# {"classes": [...]}; a dict, not a TypedDict, because it is JSON read back from the database.
LabelSet: TypeAlias = dict[str, list[str]]

SEPARATOR = "|"
EMPTY = "∅"
ELLIPSIS = "…"


class Stored(NamedTuple):
    """What a sample row holds: the key (`label`) and the canonical value (`annotation`)."""

    label: str | None
    annotation: LabelSet | None


def check_class_name(name: str) -> str | None:
    """Why `name` cannot be a class of a multi-label schema, or None."""
    if problem := text_problem(name):
        return f"the class {problem}"
    if not name.strip():
        return "a class name is empty"
    if name != name.strip():
        return f"the class {name!r} starts or ends with spaces"
    if len(name) > MAX_LABEL_LENGTH:
        return f"the class {name[:40]!r}… is longer than {MAX_LABEL_LENGTH} characters"
    if SEPARATOR in name:
        return f"the class {name!r} contains {SEPARATOR!r}, which separates classes"
    if name == EMPTY:
        return f"{EMPTY!r} is not a class name: it stands for the empty set"
    return None


def canonical(classes: Iterable[str]) -> LabelSet:
    """The canonical annotation holding `classes` (duplicates merged)."""
    return {"classes": sorted(set(classes))}


def classes(value: LabelSet) -> list[str]:
    return list(value["classes"])


def key(value: LabelSet) -> str:
    """The short text stored in `label`: `a|b`, or `∅` for the empty set, at most MAX_KEY_LENGTH
    characters (a longer one is cut and ends with `…`)."""
    text = SEPARATOR.join(value["classes"]) or EMPTY
    if len(text) > MAX_KEY_LENGTH:
        return text[: MAX_KEY_LENGTH - 1] + ELLIPSIS
    return text


def store(value: LabelSet | None) -> Stored:
    """The pair a row stores for `value` (None: unlabelled)."""
    if value is None:
        return Stored(None, None)
    value = canonical(value["classes"])
    return Stored(key(value), value)


def load(label: str | None, annotation: LabelSet | None) -> LabelSet | None:
    """The annotation a row holds (None: unlabelled); the key is derived, so it is not read."""
    if annotation is None:
        return None
    return canonical(annotation["classes"])


def _names(items: Iterable[Any]) -> list[str]:
    """Class names from a list's items, each checked; Problem names the one at fault."""
    names = []
    for item in items:
        if not isinstance(item, str):
            raise Problem(
                f"a list of labels holds {type(item).__name__} {_short(item)}, not a class name"
            )
        name = item.strip()
        if problem := check_class_name(name):
            raise Problem(problem, cls=name)
        names.append(name)
    return names


def _short(item: Any) -> str:
    text = repr(item)
    return text if len(text) <= 40 else text[:39] + ELLIPSIS


def parse_cell(text: str, *, schema: Sequence[str] | None = None) -> LabelSet | None:
    """The annotation a CSV cell holds: `a|b`, a JSON list (`["a", "b"]`, `[]`) or `∅`; an empty
    cell is unlabelled (None). With a schema, every class must be in it."""
    if problem := text_problem(text):
        raise Problem(f"the labels {problem}")
    cell = text.strip()
    if not cell:
        return None
    if cell == EMPTY:
        return _checked(canonical(()), schema)
    if cell.startswith("["):
        try:
            items = json.loads(cell)
        except (ValueError, RecursionError):
            raise Problem(
                "the labels start with '[' but are not a JSON list of class names"
            ) from None
        if not isinstance(items, list):
            raise Problem("the labels start with '[' but are not a JSON list of class names")
        return _checked(canonical(_names(items)), schema)
    parts = [part.strip() for part in cell.split(SEPARATOR)]
    if "" in parts:
        raise Problem(f"the labels {_short(cell)} have an empty class between {SEPARATOR!r}")
    return _checked(canonical(_names(parts)), schema)


def parse(raw: Any, *, schema: Sequence[str] | None = None) -> LabelSet | None:
    """The annotation an import or an API gives: a list of class names (JSONL, Parquet, the
    API), `{"classes": [...]}`, or a CSV cell. None is unlabelled. With a schema, every class
    must be in it. Problem says what is wrong and names the class."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return parse_cell(raw, schema=schema)
    if isinstance(raw, dict):
        if set(raw) != {"classes"}:
            raise Problem('an annotation is {"classes": [...]} and nothing else')
        raw = raw["classes"]
    if isinstance(raw, list | tuple):
        return _checked(canonical(_names(raw)), schema)
    # Parquet hands a list<string> cell over as a NumPy array.
    if hasattr(raw, "tolist") and isinstance(items := raw.tolist(), list):
        return _checked(canonical(_names(items)), schema)
    raise Problem(f"the labels are {type(raw).__name__}, not a list of class names")


def _checked(value: LabelSet, schema: Sequence[str] | None) -> LabelSet:
    if schema is not None and (problem := check(value, schema=schema)):
        raise problem
    return value


def check(value: Any, *, schema: Sequence[str]) -> Problem | None:
    """Why `value` is not an annotation of the schema (the first unknown class), or None."""
    if not isinstance(value, dict) or not isinstance(value.get("classes"), list):
        return Problem('an annotation is {"classes": [...]}')
    known = set(schema)
    for name in value["classes"]:
        if name not in known:
            return Problem(
                f"unknown class {name!r}; the schema has {', '.join(schema)}", cls=str(name)
            )
    return None


def csv_cell(value: LabelSet | None) -> str:
    """The CSV cell for `value`, which parse_cell reads back as it was: `a|b`; `[]` for the
    empty set; a JSON list when a class starts with `[` (which would read as one)."""
    if value is None:
        return ""
    names = value["classes"]
    if not names or any(name.startswith("[") for name in names):
        return json.dumps(names, ensure_ascii=False)
    return SEPARATOR.join(names)
