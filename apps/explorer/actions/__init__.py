"""The registry of actions on a selection of samples, shared by bulk actions and rules.

An action is one object with a name, the capability it needs, `clean(dataset, settings)` (its
settings checked against the project) and `perform(selection, settings, by=, detail=, state=)`
(the work, done through its app's services). It lives in the app that owns what it does and is
registered from that app's `AppConfig.ready()`, so the explorer (lower down) runs actions of
review, vendors and webhooks without importing them. The hooks a rule's run asks besides
(`room`, `choose`, `announce`) have defaults here for actions that need nothing more.

An action also says where it is offered and how it looks there: `rule` (a rule may take it, with
`label` in the rule form's list of actions and `form_template` its fields there, read back by
`from_form`) and `bulk` (the sample table offers it, `bulk_template` its control in the bulk
bar). The rule form, the rule service and the sample table ask the registry, so adding an
action is its class and the line that registers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import ngettext

from apps.datasets.models import Dataset, Sample
from apps.explorer.actions.selection import Selection, selection_from, selection_of_form
from apps.projects.capabilities import Cap
from apps.projects.models import Membership

__all__ = [
    "Action",
    "Selection",
    "find",
    "for_rules",
    "get",
    "offered",
    "register",
    "registered",
    "selection_from",
    "selection_of_form",
    "unregister",
]


class Action:
    """One thing to do to a selection of samples."""

    name: str = ""
    cap: Cap = Cap.AUTOMATE  # what a member needs to take the action
    # What whoever sets the action to run unattended (a rule's author) needs, when more than
    # `cap`: a rule tags with nobody looking, so it asks for more than a tag by hand.
    unattended_cap: Cap | None = None
    takes: tuple[str, ...] = ()  # the names of its settings (a rule's action has no others)
    label: str = ""  # what the rule form and a rule's page call it ("Tag the samples")

    bulk: bool = False  # offered on a selection in the sample table and the bulk endpoint
    bulk_template: str = ""  # its control in the sample table's bulk bar (a button, its inputs)

    rule: bool = False  # a rule may take it
    form_template: str = ""  # its fields in the rule form: a fieldset shown for its type
    # Settings the rule form posts as several values (checkboxes), named like the others.
    form_lists: tuple[str, ...] = ()

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
        n = count or 0
        return ngettext("Done: %(n)s sample.", "Done: %(n)s samples.", n) % {"n": f"{n:,}"}

    # --- The rule form --------------------------------------------------------------------------

    def form_context(self, dataset: Dataset, membership: Membership) -> dict[str, Any]:
        """What its fields in the rule form offer to pick from (the project's sessions,
        vendors…), as `options` in `form_template`. Asked only for a member who may set the
        action, so it shows nothing to others."""
        return {}

    def form_defaults(self) -> dict[str, Any]:
        """The settings a new rule's form starts with."""
        return {}

    def from_form(self, post: Any, prefix: str) -> dict[str, Any]:
        """Its settings from the rule form, whose fields are named `prefix` + a setting of
        `takes` (`tag_tag`): the lists of `form_lists` as posted, the others when not blank."""
        settings: dict[str, Any] = {}
        for name in self.takes:
            if name in self.form_lists:
                settings[name] = post.getlist(f"{prefix}{name}")
            elif value := post.get(f"{prefix}{name}", "").strip():
                settings[name] = value
        return settings

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


def unregister(name: str) -> None:
    """Take the action away again (an action a test registered)."""
    _registry.pop(name, None)


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


def for_rules() -> list[Action]:
    """The actions a rule may take, in the order the apps registered them."""
    return [a for a in _registry.values() if a.rule]
