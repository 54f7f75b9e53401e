"""Page panels: parts of a page that an app higher up contributes, so that the page's own app
never imports it (the sample page shows review's comments; the dataset page, quality's scoring).

An app registers its panels from its `AppConfig.ready()`. A page calls `panels_context(page, ...)`
once, which lets every panel of the page add to its context, and names each place a panel may
appear with `{% panels "<page>.<place>" %}` (`{% load panels %}`), which renders the panels of
that place with the page's context, as `{% include %}` would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest

Contribute = Callable[[HttpRequest, dict], dict]


@dataclass(frozen=True)
class Panel:
    slot: str  # "<page>.<place>", e.g. "sample.aside"
    template: str | None = None
    context: Contribute | None = None


_panels: list[Panel] = []


def panel_register(slot: str, *, template: str | None = None, context: Contribute | None = None):
    """Add a panel to a place of a page: a template rendered there, and/or `context(request,
    page_context)`, whose keys join the page's context before it is rendered."""
    panel = Panel(slot=slot, template=template, context=context)
    if panel not in _panels:  # ready() may run twice in tests
        _panels.append(panel)
    return panel


def panels_of(slot: str) -> list[Panel]:
    return [p for p in _panels if p.slot == slot and p.template]


def panels_context(page: str, request: HttpRequest, context: dict) -> dict:
    """What the page's panels add to its context, in the order they were registered."""
    added: dict = {}
    for panel in _panels:
        if panel.context is not None and panel.slot.split(".", 1)[0] == page:
            added.update(panel.context(request, {**context, **added}))
    return added
