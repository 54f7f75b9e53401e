"""The sample table's columns: which a user may choose, in which order, as the table, a saved
view and an export name them.

A column is a field of the query language (FIELDS: the sample's own columns, tags and every score
of the run) or `metadata.KEY`, plus `similarity` for a query with a similarity condition. A list
of them arrives as text, comma-separated (`?columns=external_id,label,mislabel_score`), or as a
JSON list (a saved view, an API body); `columns_of` checks it and says what is wrong.
"""

from __future__ import annotations

from typing import Any

from apps.explorer.query import FIELDS, METADATA, SIMILARITY, QueryError

# What the table shows when nobody chose: the sample, its labels and the score most sort by.
DEFAULT_COLUMNS = ("external_id", "split", "label", "suggested_label", "mislabel_score", "text")
MAX_COLUMNS = 50
MAX_KEY = 200  # characters of a metadata key


def is_score(column: str) -> bool:
    """Whether the column is a scoring run's (it is empty without a finished run)."""
    field = FIELDS.get(column)
    return field is not None and field.score


def columns_of(raw: Any) -> list[str]:
    """The columns asked for, checked: known names only, each once, at most MAX_COLUMNS. Empty
    or missing: DEFAULT_COLUMNS. QueryError on "columns" naming the first bad one."""
    if raw is None or raw == "" or raw == []:
        return list(DEFAULT_COLUMNS)
    if isinstance(raw, str):
        names = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, list) and all(isinstance(part, str) for part in raw):
        names = [part.strip() for part in raw]
    else:
        raise QueryError("columns", "must be a list of column names, or names joined by commas")
    chosen: list[str] = []
    for name in names:
        if not name:
            raise QueryError("columns", "has an empty name (two commas in a row?)")
        if name.startswith(METADATA):
            key = name[len(METADATA) :]
            if not key or len(key) > MAX_KEY or "\x00" in key:
                raise QueryError(
                    "columns", f"{name!r}: a metadata key of 1 to {MAX_KEY} characters"
                )
        elif name not in FIELDS and name != SIMILARITY:
            known = ", ".join((*FIELDS, SIMILARITY))
            raise QueryError("columns", f"unknown column {name!r}: use {known} or metadata.KEY")
        if name not in chosen:
            chosen.append(name)
    if len(chosen) > MAX_COLUMNS:
        raise QueryError("columns", f"at most {MAX_COLUMNS} columns")
    return chosen
