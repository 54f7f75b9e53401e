"""The registry of actions on a selection of samples, shared by bulk actions and rules.

An action is one object with a name, the capability it needs, `clean(dataset, settings)` (its
settings checked against the project) and `perform(selection, settings, by=, detail=, state=)`
(the work, done through its app's services). It lives in the app that owns what it does and is
registered from that app's `AppConfig.ready()`, so the explorer (lower down) runs actions of
review, vendors and webhooks without importing them. The hooks a rule's run asks besides
(`room`, `choose`, `announce`) have defaults here for actions that need nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet

from apps.datasets.models import Dataset, Sample
from apps.explorer.actions.selection import Selection, selection_from, selection_of_form
from apps.projects.capabilities import Cap

__all__ = [
    "Action",
    "Selection",
    "find",
    "get",
    "offered",
    "register",
    "registered",
    "selection_from",
    "selection_of_form",
]


class Action:
    """One thing to do to a selection of samples."""

    name: str = ""
    cap: Cap = Cap.AUTOMATE  # what a member needs to take the action
    # What whoever sets the action to run unattended (a rule's author) needs, when more than
    # `cap`: a rule tags with nobody looking, so it asks for more than a tag by hand.
    unattended_cap: Cap | None = None
    takes: tuple[str, ...] = ()  # the names of its settings (a rule's action has no others)
    bulk: bool = False  # offered on a selection in the sample table and the bulk endpoint

    def clean(self, dataset: Dataset, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The settings checked against the dataset's project (ValidationError when wrong):
        what `perform` will need exists. Only the settings it keeps, without "type"."""
        return {}

    def perform(
        self,
        selection: Selection,
        settings: Mapping[str, Any],
        *,
        by: Any,
        detail: dict[str, Any],
        state: dict[str, Any] | None = None,
    ) -> int | None:
        """Do it on every sample of the selection, as `by`; what it made goes into `detail`.
        `state` is what the action keeps from one time to the next (the session or batch a
        rule fills) and may be changed in place. `settings` are cleaned ones, plus a default
        "title" and "description" for what it makes when the caller has them. Returns how many
        samples it changed, when that means something."""
        raise NotImplementedError

    def done(self, count: int | None, settings: Mapping[str, Any]) -> str:
        """What the sample table says once it was done."""
        return f"Done: {count or 0:,} samples."

    # --- Asked by an unattended run (a rule) ---------------------------------------------------

    def room(
        self,
        dataset: Dataset,
        settings: Mapping[str, Any],
        *,
        room: int,
        state: Mapping[str, Any],
        detail: dict[str, Any],
    ) -> int:
        """How many samples, at most `room`, the action's target can still take."""
        return room

    def choose(
        self,
        dataset: Dataset,
        candidates: QuerySet[Sample],
        settings: Mapping[str, Any],
        *,
        run: Any,
        room: int,
        detail: dict[str, Any],
    ) -> list[Sample]:
        """Which of the candidates (in order) to act on: the first `room` of them."""
        return list(candidates[:room])

    def announce(
        self, dataset: Dataset, settings: Mapping[str, Any], *, text: str, url: str
    ) -> dict[str, Any]:
        """What the action adds to the event that says it was done (`notice`, `webhook`);
        `text` and `url` say what happened, for a notice."""
        return {}


_registry: dict[str, Action] = {}


def register(action: Action) -> Action:
    """Make the action available under its name (once; registering it again changes nothing)."""
    known = _registry.get(action.name)
    if known is not None and known is not action and type(known) is not type(action):
        raise ValueError(f"Two actions are named {action.name!r}.")
    _registry.setdefault(action.name, action)
    return action


def find(name: str) -> Action | None:
    return _registry.get(name)


def get(name: str) -> Action:
    action = _registry.get(name)
    if action is None:
        raise LookupError(f"No action {name!r} is registered; is its app installed?")
    return action


def registered() -> list[Action]:
    """Every action, in the order the apps registered them."""
    return list(_registry.values())


def offered() -> list[Action]:
    """The actions offered on a selection of the sample table (and its bulk endpoint)."""
    return [a for a in _registry.values() if a.bulk]
