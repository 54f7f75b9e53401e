"""Domain events: in-transaction subscribers write with the change and roll back with it;
on-commit subscribers run only once the change commits; the apps' own subscribers are wired."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.core import events
from apps.review.models import Activity, Notification
from apps.webhooks.models import WebhookDelivery
from tests.webhooks.conftest import enqueued, stored_webhook  # noqa: F401 - a fixture

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


def test_a_rollback_takes_the_rows_written_in_the_transaction_with_it(team):
    with pytest.raises(RuntimeError), transaction.atomic():
        events.record(event(project=team.project, activity="did something"))
        assert Activity.objects.filter(verb="did something").exists()
        raise RuntimeError("the service failed after recording")
    assert not Activity.objects.filter(verb="did something").exists()


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


def test_the_feed_notifications_and_webhooks_react_in_the_transaction(
    team,
    enqueued,  # noqa: F811
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    hook = stored_webhook(team, "https://example.com/hook", events=["drift.alert"])
    owner, manager = team.user("owner"), team.user("manager")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        receipt = events.record(
            event(
                "drift.alert",
                project=team.project,
                payload={"url": "/x/"},
                activity="drift alert on x",
                url="/x/",
                notice=events.Notice(users=(owner, manager), kind="drift", text="Drift", url="/x/"),
            )
        )
        (line,) = Activity.objects.filter(project=team.project)
        assert line.verb == "drift alert on x" and line.actor is None
        assert set(Notification.objects.values_list("user__username", flat=True)) == {
            owner.username,
            manager.username,
        }
        (delivery,) = WebhookDelivery.objects.filter(webhook=hook)
        assert delivery.event == "drift.alert" and delivery.payload == {"url": "/x/"}
        assert enqueued == [(delivery.pk, 0)]
    assert receipt == {"notified": 2}
    # The e-mails wait for the commit.
    assert mailoutbox == [] and callbacks


def test_an_events_own_webhook_gets_it_once_subscribed_or_not(team, enqueued):  # noqa: F811
    quiet = stored_webhook(team, "https://example.com/quiet", events=["session.closed"])
    listening = stored_webhook(team, "https://example.com/listening", events=["rule.fired"])
    receipt = events.record(event("rule.fired", project=team.project, webhook=quiet.pk))
    (delivery,) = WebhookDelivery.objects.filter(webhook=quiet)
    assert receipt == {"delivery": delivery.pk}
    assert events.record(event("rule.fired", project=team.project, webhook=listening.pk)) == {}
    assert WebhookDelivery.objects.filter(webhook=listening).count() == 2


def test_a_finished_scoring_run_queues_the_rules_on_commit(
    team, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        "apps.rules.services.rules_after_scoring_enqueue",
        lambda *, scoring_run_id: queued.append(scoring_run_id),
    )
    finished = event("scoring.finished", project=team.project, payload={"run": 41})
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            events.record(finished)
            raise RuntimeError("rolled back")
        assert queued == []
        events.record(finished)
        assert queued == []
    assert queued == [41]
