"""Domain events: in-transaction subscribers write with the change and roll back with it;
on-commit subscribers run only once the change commits."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.core import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    """Subscribes test subscribers for one test and records what each one heard, with whether
    a transaction was open when it ran."""
    log: list[tuple[str, str, bool]] = []
    added = []

    def listen(tag: str, *names: str, on_commit: bool = False, returns=None):
        def subscriber(event):
            log.append((tag, event.name, transaction.get_connection().in_atomic_block))
            return returns

        events.subscribe(subscriber, *names, on_commit=on_commit)
        added.append(subscriber)
        return subscriber

    yield listen, log
    for subscriber in added:
        events.unsubscribe(subscriber)


def event(name: str = "test.happened", project=None, **fields) -> events.Event:
    return events.Event(name, project=project, **fields)


def test_an_in_transaction_subscriber_runs_at_record_time_inside_the_transaction(heard):
    listen, log = heard
    listen("now", "test.happened")
    with transaction.atomic():
        events.record(event())
        assert log == [("now", "test.happened", True)]


def test_an_on_commit_subscriber_waits_for_the_commit(heard, django_capture_on_commit_callbacks):
    listen, log = heard
    listen("later", "test.happened", on_commit=True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            events.record(event())
            assert log == []
    assert len(callbacks) == 1 and [tag for tag, _name, _open in log] == ["later"]


def test_a_rollback_drops_the_on_commit_reactions(heard, django_capture_on_commit_callbacks):
    listen, log = heard
    listen("now", "test.happened")
    listen("later", "test.happened", on_commit=True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            events.record(event())
            raise RuntimeError("the service failed after recording")
    assert callbacks == [] and [tag for tag, _name, _open in log] == ["now"]


def test_a_subscriber_hears_only_the_events_it_names_or_every_one(heard):
    listen, log = heard
    listen("named", "test.happened")
    listen("every")
    events.record(event("test.happened"))
    events.record(event("test.other"))
    assert [(tag, name) for tag, name, _open in log] == [
        ("named", "test.happened"),
        ("every", "test.happened"),
        ("every", "test.other"),
    ]


def test_subscribing_twice_calls_once(heard):
    listen, log = heard
    subscriber = listen("once", "test.happened")
    events.subscribe(subscriber, "test.happened")
    events.record(event())
    assert len(log) == 1


def test_an_in_transaction_failure_reaches_the_producer():
    def broken(event):
        raise ValueError("the subscriber failed")

    events.subscribe(broken, "test.happened")
    try:
        with pytest.raises(ValueError, match="the subscriber failed"):
            events.record(event())
    finally:
        events.unsubscribe(broken)


def test_record_returns_what_the_subscribers_report(heard):
    listen, _log = heard
    listen("a", "test.happened", returns={"notified": 2})
    listen("b", "test.happened", returns={"delivery": 7})
    listen("c", "test.happened", on_commit=True, returns={"ignored": True})
    assert events.record(event()) == {"notified": 2, "delivery": 7}
