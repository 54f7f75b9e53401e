"""Multi-label classification: changes between two label sets, one class at a time. An edit is
`{"op": "add", "class": "refund"}` or `{"op": "remove", "class": "billing"}`; adding a class
already there, or removing one that is not, changes nothing (a vote cast against an older set
still means what it said)."""

from __future__ import annotations

from collections.abc import Iterable

from apps.annotations.base import Edit, Problem
from apps.annotations.multilabel.values import LabelSet, canonical

ADD, REMOVE = "add", "remove"
_SIGNS = {ADD: "+", REMOVE: "−"}


def diff(old: LabelSet, new: LabelSet) -> list[Edit]:
    """The edits that turn `old` into `new`: removals, then additions, each by class."""
    before, after = set(old["classes"]), set(new["classes"])
    removed: list[Edit] = [{"op": REMOVE, "class": c} for c in sorted(before - after)]
    added: list[Edit] = [{"op": ADD, "class": c} for c in sorted(after - before)]
    return removed + added


def apply(value: LabelSet, edits: Iterable[Edit]) -> LabelSet:
    """`value` with the edits made, in order; Problem for an edit that is not one."""
    present = set(value["classes"])
    for edit in edits:
        if not isinstance(edit, dict) or set(edit) != {"op", "class"}:
            raise Problem('an edit is {"op": "add" or "remove", "class": name}')
        op, name = edit["op"], edit["class"]
        if not isinstance(name, str):
            raise Problem("an edit names its class as text")
        if op == ADD:
            present.add(name)
        elif op == REMOVE:
            present.discard(name)
        else:
            raise Problem(f"unknown edit {op!r} for class {name!r}; use add or remove", cls=name)
    return canonical(present)


def describe(edits: Iterable[Edit]) -> list[str]:
    """The edits as people read them: ["+refund", "−billing"]."""
    return [f"{_SIGNS.get(edit['op'], edit['op'] + ' ')}{edit['class']}" for edit in edits]
