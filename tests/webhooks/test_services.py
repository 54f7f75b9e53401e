"""Webhook services: events reach the subscribed active webhooks only; failures are retried with
growing pauses up to six attempts; the sweeper re-queues deliveries whose message was lost;
every change to a webhook is in the audit log, its secret never."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.webhooks import services
from apps.webhooks.models import Webhook, WebhookDelivery
from tests.webhooks.conftest import stored_webhook

pytestmark = pytest.mark.django_db


def attempt_when_due(delivery_id: int) -> WebhookDelivery | None:
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    if delivery.next_attempt_at:
        time.sleep(max(0.0, (delivery.next_attempt_at - timezone.now()).total_seconds()))
    return services.delivery_attempt(delivery_id=delivery_id)


def test_an_event_reaches_active_subscribed_webhooks_of_its_project_only(team, enqueued):
    wanted = stored_webhook(team, "https://a.example.com/", events=["version.committed"])
    stored_webhook(team, "https://b.example.com/", events=["drift.alert"])
    stored_webhook(team, "https://c.example.com/", events=["version.committed"], active=False)
    elsewhere = Webhook.objects.create(
        project=team.other_project, url="https://d.example.com/", events=["version.committed"]
    )
    count = services.event_emit(
        project=team.project, event="version.committed", payload={"version": 2}
    )
    assert count == 1
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.webhook == wanted and delivery.payload == {"version": 2}
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    assert enqueued == [(delivery.pk, 0)]
    assert not elsewhere.deliveries.exists()
    assert services.event_emit(project=team.project, event="scoring.finished", payload={}) == 0


def test_ping_is_deliverable_but_not_subscribable(team, enqueued):
    with pytest.raises(ValueError, match="unknown webhook event"):
        services.event_emit(project=team.project, event="ping", payload={})
    with pytest.raises(ValueError, match="unknown webhook event"):
        services.event_emit(project=team.project, event="sample.eaten", payload={})
    with pytest.raises(ValidationError, match="Unknown events: ping"):
        services.webhook_create(
            project=team.project, by=team.user("owner"), url="https://x.example/", events=["ping"]
        )
    with pytest.raises(ValidationError, match="at least one"):
        services.webhook_create(
            project=team.project, by=team.user("owner"), url="https://x.example/", events=[]
        )
    webhook = stored_webhook(team, "https://x.example/", active=False)
    delivery = services.webhook_ping(webhook=webhook, by=team.user("manager"))
    assert delivery.event == "ping" and delivery.payload["by"] == "manager1"


def test_failures_are_retried_with_growing_pauses_until_delivered(
    team, receiver, settings, enqueued
):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.LOUPE_WEBHOOK_BACKOFF_BASE = 0.1
    listening = receiver(answers=[500, 500, 200])
    webhook = stored_webhook(team, listening.url)
    delivery = services.delivery_create(webhook=webhook, event="version.committed", payload={})
    first = services.delivery_attempt(delivery_id=delivery.pk)
    assert first.status == "pending" and first.attempts == 1 and first.response_status == 500
    assert first.error == "The receiver answered 500." and first.response_excerpt == "not now"
    # Not due yet: another message for it (a sweep, a duplicate) does nothing.
    assert services.delivery_attempt(delivery_id=delivery.pk) is None
    second = attempt_when_due(delivery.pk)
    assert second.status == "pending" and second.attempts == 2
    third = attempt_when_due(delivery.pk)
    assert third.status == "delivered" and third.attempts == 3 and third.error == ""
    assert [a["status_code"] for a in third.attempt_log] == [500, 500, 200]
    assert len(listening.requests) == 3
    times = [datetime.fromisoformat(a["at"]) for a in third.attempt_log]
    pauses = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert pauses[0] >= 0.1 and pauses[1] >= 0.4 and pauses[1] > pauses[0]
    # Each retry was queued with its countdown: base, then four times the base.
    assert enqueued == [(delivery.pk, 0), (delivery.pk, 0.1), (delivery.pk, pytest.approx(0.4))]
    # Every attempt sends the same body (signed at the time of that attempt).
    assert len({r.body for r in listening.requests}) == 1


def test_the_default_backoff_runs_from_30_seconds_to_about_two_hours(settings):
    settings.LOUPE_WEBHOOK_BACKOFF_BASE = 30
    assert [services.backoff(n) for n in range(1, 6)] == [30, 120, 480, 1920, 7680]


def test_a_delivery_fails_for_good_after_six_attempts(team, receiver, settings, enqueued):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.LOUPE_WEBHOOK_BACKOFF_BASE = 0
    listening = receiver(answers=[503] * 10)
    delivery = services.delivery_create(
        webhook=stored_webhook(team, listening.url), event="version.committed", payload={}
    )
    for _ in range(services.MAX_ATTEMPTS):
        services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 6
    assert delivery.next_attempt_at is None and len(delivery.attempt_log) == 6
    assert services.delivery_attempt(delivery_id=delivery.pk) is None
    assert len(listening.requests) == 6


def test_a_turned_off_webhook_is_sent_nothing_more(team, receiver, settings, enqueued):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    listening = receiver()
    webhook = stored_webhook(team, listening.url)
    delivery = services.delivery_create(webhook=webhook, event="version.committed", payload={})
    services.webhook_update(webhook=webhook, by=team.user("owner"), active=False)
    assert services.delivery_attempt(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "turned off" in delivery.error
    ping = services.webhook_ping(webhook=webhook, by=team.user("owner"))
    assert services.delivery_attempt(delivery_id=ping.pk).status == "delivered"
    assert [r.headers["X-Loupe-Event"] for r in listening.requests] == ["ping"]


def test_the_sweeper_requeues_due_deliveries_whose_message_was_lost(team, enqueued):
    webhook = stored_webhook(team, "https://example.com/hook")
    lost = services.delivery_create(webhook=webhook, event="version.committed", payload={})
    later = services.delivery_create(webhook=webhook, event="version.committed", payload={})
    WebhookDelivery.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    done = services.delivery_create(webhook=webhook, event="version.committed", payload={})
    WebhookDelivery.objects.filter(pk=done.pk).update(status="delivered", next_attempt_at=None)
    enqueued.clear()
    # Just queued: its own message is on its way.
    assert services.deliveries_retry_due() == 0
    soon = timezone.now() + services.REQUEUE_AFTER + timedelta(seconds=1)
    assert services.deliveries_retry_due(now=soon) == 1
    assert enqueued == [(lost.pk, 0)]
    # Queued again just now: not again at the next sweep, only after another while.
    assert services.deliveries_retry_due(now=soon + timedelta(seconds=60)) == 0
    assert services.deliveries_retry_due(now=soon + 2 * services.REQUEUE_AFTER) == 1


def test_a_delivery_under_way_is_left_alone(team, enqueued):
    """A claimed delivery is leased: a second message finds it not due; if its worker dies,
    the lease runs out and the sweeper queues it again, the lost attempt counted."""
    delivery = services.delivery_create(
        webhook=stored_webhook(team, "https://example.com/hook"), event="drift.alert", payload={}
    )
    claimed = services._claim(delivery.pk)
    assert claimed.attempts == 1 and claimed.next_attempt_at > timezone.now()
    assert services.delivery_attempt(delivery_id=delivery.pk) is None
    assert services.deliveries_retry_due(now=timezone.now() + timedelta(minutes=1)) == 0
    assert services.deliveries_retry_due(now=timezone.now() + timedelta(minutes=9)) == 1


def test_webhook_changes_are_audited_without_the_secret(team):
    owner = team.user("owner")
    webhook = services.webhook_create(
        project=team.project,
        by=owner,
        url="https://example.com/hook",
        events=["session.closed", "drift.alert"],
        description="CI",
    )
    first_secret = webhook.secret
    assert first_secret.startswith("whsec_") and len(first_secret) > 40
    services.webhook_update(webhook=webhook, by=owner, url="https://example.com/v2", active=False)
    services.webhook_update(webhook=webhook, by=owner, url="https://example.com/v2")  # no change
    rotated = services.webhook_rotate_secret(webhook=webhook, by=team.user("manager"))
    assert rotated.secret != first_secret
    services.webhook_delete(webhook=rotated, by=owner)
    events = list(AuditEvent.objects.filter(project=team.project).order_by("id"))
    assert [e.action for e in events] == [
        "webhook.created",
        "webhook.changed",
        "webhook.secret_rotated",
        "webhook.deleted",
    ]
    assert [e.actor_name for e in events] == ["owner1", "owner1", "manager1", "owner1"]
    assert events[0].target == "https://example.com/hook"
    assert events[0].detail["events"] == ["drift.alert", "session.closed"]  # in the EVENTS order
    assert events[1].detail["changes"] == {
        "url": ["https://example.com/hook", "https://example.com/v2"],
        "active": [True, False],
    }
    written = json.dumps([[e.target, e.detail] for e in events])
    assert first_secret not in written and rotated.secret not in written
    assert "whsec_" not in written
    assert not Webhook.objects.exists()


def test_a_project_has_at_most_twenty_webhooks(team):
    for i in range(services.MAX_WEBHOOKS_PER_PROJECT):
        stored_webhook(team, f"https://example.com/{i}")
    with pytest.raises(ValidationError, match="at most 20"):
        services.webhook_create(
            project=team.project,
            by=team.user("owner"),
            url="https://example.com/x",
            events=["drift.alert"],
        )


def test_the_tasks_are_registered_and_the_sweep_is_scheduled(settings):
    from workers.celery import app

    app.loader.import_default_modules()
    assert {"loupe.webhooks.deliver", "loupe.webhooks.retry_due"} <= set(app.tasks)
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule["loupe.webhooks.retry_due"] <= 60
