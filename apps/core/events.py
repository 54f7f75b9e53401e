"""Domain events: a service records what it finished, and the apps that react subscribe to it.

A producing service calls `record(Event(...))` inside its own transaction and imports nothing of
the apps that react: the activity feed and notifications (apps.review), webhook deliveries
(apps.webhooks), rules (apps.rules) and the audit log (apps.audit) subscribe in their
`AppConfig.ready()`, from their `subscribers.py`. The producer words its own feed line, notice
and audit entry (it knows what happened and who should hear of it); the reacting app decides how
they are kept and sent.

Two kinds of subscriber, so that what happens stays what happened when services called each
other directly:

- **In the transaction** (the default): called at once by `record`, inside the producer's
  transaction. Rows written together with the change (an activity line, notifications, webhook
  deliveries) commit with it or roll back with it. An exception propagates to the producer, as
  the direct call did: it fails the service and rolls its transaction back. Work that must wait
  for the commit (e-mails, a delivery's message to the broker) is deferred by the subscriber
  itself with `transaction.on_commit`, as before.
- **On commit** (`on_commit=True`): handed to `transaction.on_commit`, so it runs only once the
  producer's transaction commits, and never when it rolls back (queueing the rules that follow a
  scoring run). Outside a transaction it runs at once, as `on_commit` does. Such a subscriber
  handles its own failures as the work it replaces did; one that raises propagates to whoever
  commits, as any `on_commit` callback does.

An in-transaction subscriber may return a dict of what it did; `record` returns these merged,
so a producer can keep a record of the reactions (a rule run notes how many people it notified
and the delivery its own webhook got) without importing the app that reacted. Subscribers run in
the order they subscribed, which is the order of INSTALLED_APPS.

Django's signals were weighed: they key receivers by the sender's identity rather than by an
event's name, have no on-commit phase, and their robust variant swallows errors that the calls
replaced here let through; the registry below is a few lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import transaction


@dataclass(frozen=True)
class Notice:
    """People to tell in the app (and by e-mail, once committed) about an event."""

    users: tuple
    kind: str  # a Notification kind: "mention", "session", "decision", "batch", "rule", "drift"
    text: str
    url: str = ""
    site_url: str = ""  # the root the e-mail's link starts with (default: LOUPE_SITE_URL)


@dataclass(frozen=True)
class Audit:
    """An entry for the audit log about an event: the event's name is the act, its actor and
    project who did it and where (none: an account's own act, such as a token)."""

    target: str = ""  # what was acted on, in words
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """Something a service finished. `payload` is what a webhook receiver gets for the events
    webhooks publish; `activity` is the project's activity-feed line (none when empty); `audit`
    the audit-log entry (none when None)."""

    name: str  # "<entity>.<past tense>", e.g. "version.committed"
    project: Any
    actor: Any = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    activity: str = ""
    url: str = ""  # where the activity line links
    notice: Notice | None = None
    webhook: int | None = None  # a webhook that gets the event even if not subscribed to it
    audit: Audit | None = None


Subscriber = Callable[[Event], Mapping[str, Any] | None]

# (subscriber, names it listens to (empty: every event), on commit)
_subscribers: list[tuple[Subscriber, frozenset[str], bool]] = []


def subscribe(subscriber: Subscriber, *names: str, on_commit: bool = False) -> None:
    """Call `subscriber(event)` for every event recorded with one of `names` (every event when
    none is given): in the recording transaction, or after it commits with `on_commit`.
    Subscribing the same function again changes nothing."""
    if any(s is subscriber for s, _names, _phase in _subscribers):
        return
    _subscribers.append((subscriber, frozenset(names), on_commit))


def unsubscribe(subscriber: Subscriber) -> None:
    _subscribers[:] = [entry for entry in _subscribers if entry[0] is not subscriber]


def record(event: Event) -> dict[str, Any]:
    """Run the event's in-transaction subscribers now and schedule its on-commit ones; returns
    what the in-transaction subscribers reported, merged."""
    receipt: dict[str, Any] = {}
    for subscriber, names, on_commit in list(_subscribers):
        if names and event.name not in names:
            continue
        if on_commit:
            transaction.on_commit(partial(subscriber, event))
        else:
            receipt.update(subscriber(event) or {})
    return receipt
