"""Which part each column of a file plays: by its name (the documented conventions), or as the
user maps it; and ids made from a sample's content for files that have none.

A mapping gives some columns a role; the others keep the role their name gives them. The
mapped file is read as if its columns had the conventional names, so one set of rules checks
every import, and problems name the file's own columns.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass

ROLES = (
    "id",
    "text",
    "label",
    "split",
    "image",
    "embedding",
    "probs",
    "metadata",
    "feature",
    "ignore",
)
ROLE_NAMES = {
    "id": "id",
    "text": "text",
    "label": "label",
    "split": "split",
    "image": "image path",
    "embedding": "embedding",
    "probs": "probabilities",
    "metadata": "metadata",
    "feature": "feature (tabular)",
    "ignore": "ignore",
}
SINGLE_ROLES = ("id", "text", "label", "split", "image")  # one column each at most
_EMB_COLUMN = re.compile(r"^emb_\d+$")
_RESERVED = re.compile(
    r"^(?:id|label|split|text|image|embedding|probs|metadata|emb_\d+)$|^(?:prob|meta)_"
)


class MappingRefused(Exception):
    """A mapping that cannot be applied to the file; names the column at fault."""

    def __init__(self, column: str, message: str):
        self.column = column
        self.message = message
        super().__init__(f"column {column!r}: {message}")


def role_by_name(column: str, *, tabular: bool) -> str | None:
    """The role a column's name gives it under the import conventions; None when the name says
    nothing (refused by an import unless mapped, or a feature in a tabular dataset)."""
    if column in SINGLE_ROLES:
        return column
    if column == "embedding" or _EMB_COLUMN.match(column):
        return "embedding"
    if column == "probs" or column.startswith("prob_"):
        return "probs"
    if column == "metadata" or column.startswith("meta_"):
        return "metadata"
    return "feature" if tabular else None


def mapping_errors(mapping: object, header: list[str] | None = None) -> list[tuple[str, str]]:
    """What is wrong with a mapping as given (its shape, its roles, columns not in the file),
    as (column, message) pairs."""
    if not isinstance(mapping, dict):
        return [("-", "give the columns as an object of column name to role")]
    errors = []
    for column, role in mapping.items():
        if role not in ROLES:
            errors.append((str(column), f"unknown role {role!r}; use one of {', '.join(ROLES)}"))
        elif header is not None and column not in header:
            errors.append((str(column), "no column of that name in the file"))
    return errors


def roles_for(
    header: list[str], mapping: dict[str, str] | None, *, tabular: bool
) -> list[str | None]:
    """The role of each column of the file: as mapped, else by its name."""
    mapping = mapping or {}
    return [mapping.get(c) or role_by_name(c, tabular=tabular) for c in header]


def role_problems(
    header: list[str], roles: list[str | None], *, modality: str, generate_ids: bool
) -> list[tuple[str, str]]:
    """Problems of a set of roles that an import would refuse, as (column, message) pairs; a
    column is '-' when the problem is the file's as a whole."""
    problems: list[tuple[str, str]] = []
    for column, role in zip(header, roles, strict=True):
        if role is None:
            problems.append(
                (column, "choose what this column is (metadata keeps it, ignore leaves it out)")
            )
        elif role == "feature" and modality != "tabular":
            problems.append((column, "feature columns are for tabular datasets; use metadata"))
    for role in SINGLE_ROLES:
        columns = [c for c, r in zip(header, roles, strict=True) if r == role]
        if len(columns) > 1:
            problems.append(
                (columns[1], f"{' and '.join(map(repr, columns))} are both mapped to {role}")
            )
    has_id = "id" in roles
    if generate_ids and has_id:
        column = header[roles.index("id")]
        problems.append((column, "ids are generated: map this column to metadata or ignore it"))
    elif not generate_ids and not has_id:
        problems.append(("-", "no column is the id: map one to id, or generate ids"))
    content = {"text": "text", "image": "image"}.get(modality)
    if content and content not in roles:
        problems.append(("-", f"no {content} column in a {modality} dataset"))
    if generate_ids and modality == "tabular" and "feature" not in roles:
        problems.append(("-", "ids are made from the features: map at least one column to feature"))
    return problems


@dataclass
class Renaming:
    """The file's columns under their conventional names (None: left out), and back."""

    names: list[str | None]
    original: dict[str, str]  # conventional name -> the file's column, for renamed ones


def conventional_names(
    header: list[str], mapping: dict[str, str] | None, *, tabular: bool
) -> Renaming:
    """The name under which the import rules read each column of the file, given the mapping.
    Raises MappingRefused naming the column when the mapping cannot be applied."""
    for column, message in mapping_errors(mapping or {}, header):
        raise MappingRefused(column, message)
    roles = roles_for(header, mapping, tabular=tabular)
    emb = [c for c, r in zip(header, roles, strict=True) if r == "embedding"]
    probs = [c for c, r in zip(header, roles, strict=True) if r == "probs"]
    emb_named = all(_EMB_COLUMN.match(c) for c in emb)
    names: list[str | None] = []
    for column, role in zip(header, roles, strict=True):
        if role is None or role == "ignore":
            name = None if role == "ignore" else column  # unmapped: the rules refuse it by name
        elif role in SINGLE_ROLES:
            name = role
        elif role == "embedding":
            if emb_named:
                name = column
            elif len(emb) == 1:
                name = "embedding"
            else:
                name = f"emb_{emb.index(column)}"
        elif role == "probs":
            if column.startswith("prob_"):
                name = column
            elif len(probs) == 1:
                name = "probs"
            else:
                name = f"prob_{column}"
        elif role == "metadata":
            name = (
                column if column == "metadata" or column.startswith("meta_") else f"meta_{column}"
            )
        else:  # a feature keeps its name, which must not read as another role
            if _RESERVED.match(column):
                raise MappingRefused(
                    column, "a feature column cannot have a name the import conventions use"
                )
            name = column
        names.append(name)
    seen: dict[str, str] = {}
    for column, name in zip(header, names, strict=True):
        if name is None:
            continue
        if name in seen:
            both = f"{seen[name]!r} and {column!r}"
            raise MappingRefused(
                column,
                f"{both} are both mapped to {name}"
                if name in SINGLE_ROLES
                else f"{both} would both be read as {name!r}",
            )
        seen[name] = column
    original = {n: c for c, n in zip(header, names, strict=True) if n is not None and n != c}
    return Renaming(names=names, original=original)


# Ids made from content: the first 16 hex digits of the SHA-256 of what the sample is, so the
# same data imported again (labels changed, rows reordered, columns added) gets the same ids.
# Content repeated in one file gets -2, -3, ... in the order of its rows.
GENERATED_ID_DIGITS = 16


def content_key(*, modality: str, text: object, image: str, features: dict | None) -> str:
    """What a generated id is made from: the text, the image path, or the features of a row."""
    if modality == "text":
        value = "" if text is None else str(text)
        return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if modality == "image":
        return image
    return json.dumps(features or {}, sort_keys=True, ensure_ascii=False, default=str)


def content_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:GENERATED_ID_DIGITS]
