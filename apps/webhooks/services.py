"""Webhooks: managing a project's receivers, queueing signed deliveries of its events, sending
them with retries and exponential backoff, and re-queueing deliveries whose message was lost."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

# Under another name: `events` is a webhook's chosen events in this module.
from apps.core import events as domain_events
from apps.core.tasks import task_enqueue
from apps.projects.models import Project
from apps.webhooks import transport
from apps.webhooks.models import Webhook, WebhookDelivery
from apps.webhooks.signing import SIGNATURE_HEADER, secret_new, signature

logger = logging.getLogger("apps.webhooks")

EVENTS = (
    "scoring.finished",
    "drift.alert",
    "rule.fired",
    "session.closed",
    "batch.submitted",
    "version.committed",
)
EVENT_LABELS = {
    "scoring.finished": "A scoring run finished",
    "drift.alert": "Drift alert",
    "rule.fired": "A rule fired",
    "session.closed": "A review session closed",
    "batch.submitted": "A vendor submitted a batch",
    "version.committed": "A dataset version was committed",
}
PING = "ping"  # a test send from the webhooks page or API: deliverable, not subscribable

MAX_ATTEMPTS = 6
BACKOFF_FACTOR = 4
# While an attempt is under way its delivery is leased: no one else sends it until then.
LEASE = timedelta(minutes=3)
# The sweeper re-queues a due delivery whose message has been on the queue this long.
REQUEUE_AFTER = timedelta(minutes=5)
SWEEP_BATCH = 500
MAX_WEBHOOKS_PER_PROJECT = 20
ERROR_CHARS = 1000

Status = WebhookDelivery.Status


# --- Managing webhooks ------------------------------------------------------------------------


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise ValidationError({"url": "Give the receiver's URL."})
    problem = transport.url_problem(url, settings.LOUPE_WEBHOOK_ALLOWED_HOSTS)
    if problem:
        raise ValidationError({"url": problem})
    return url


def _clean_events(events) -> list[str]:
    chosen = list(dict.fromkeys(events or []))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise ValidationError(
            {"events": f"Unknown events: {', '.join(unknown)}. Choose from {', '.join(EVENTS)}."}
        )
    if not chosen:
        raise ValidationError({"events": "Choose at least one event."})
    return [e for e in EVENTS if e in chosen]


@transaction.atomic
def webhook_create(
    *,
    project: Project,
    by,
    url: str,
    events,
    description: str = "",
    active: bool = True,
) -> Webhook:
    """A receiver of the project's chosen events, with a new signing secret."""
    url, events = _clean_url(url), _clean_events(events)
    Project.objects.select_for_update().filter(pk=project.pk).first()  # count under a lock
    if Webhook.objects.filter(project=project).count() >= MAX_WEBHOOKS_PER_PROJECT:
        raise ValidationError(
            {"url": f"A project has at most {MAX_WEBHOOKS_PER_PROJECT} webhooks."}
        )
    webhook = Webhook.objects.create(
        project=project,
        url=url,
        description=(description or "").strip()[:200],
        events=events,
        active=bool(active),
        secret=secret_new(),
        created_by=by,
    )
    domain_events.record(
        domain_events.Event(
            "webhook.created",
            project=project,
            actor=by,
            audit=domain_events.Audit(
                target=url,
                detail={"webhook": webhook.pk, "events": events, "active": webhook.active},
            ),
        )
    )
    return webhook


def _locked(webhook: Webhook) -> Webhook:
    """The webhook's row, locked for a change, with its project for the audit log."""
    return (
        Webhook.objects.select_for_update(of=("self",)).select_related("project").get(pk=webhook.pk)
    )


@transaction.atomic
def webhook_update(
    *,
    webhook: Webhook,
    by,
    url: str | None = None,
    events=None,
    description: str | None = None,
    active: bool | None = None,
) -> Webhook:
    """Change what is given (None leaves a field as it is); the audit log keeps before and after."""
    webhook = _locked(webhook)
    wanted = {
        "url": _clean_url(url) if url is not None else webhook.url,
        "events": _clean_events(events) if events is not None else webhook.events,
        "description": (description or "").strip()[:200]
        if description is not None
        else webhook.description,
        "active": bool(active) if active is not None else webhook.active,
    }
    changes = {
        name: [getattr(webhook, name), value]
        for name, value in wanted.items()
        if getattr(webhook, name) != value
    }
    if not changes:
        return webhook
    for name, (_old, value) in changes.items():
        setattr(webhook, name, value)
    webhook.save(update_fields=list(changes))
    domain_events.record(
        domain_events.Event(
            "webhook.changed",
            project=webhook.project,
            actor=by,
            audit=domain_events.Audit(
                target=webhook.url, detail={"webhook": webhook.pk, "changes": changes}
            ),
        )
    )
    return webhook


@transaction.atomic
def webhook_rotate_secret(*, webhook: Webhook, by) -> Webhook:
    """A new signing secret, used from the next attempt on (retries of pending deliveries too)."""
    webhook = _locked(webhook)
    webhook.secret = secret_new()
    webhook.save(update_fields=["secret"])
    domain_events.record(
        domain_events.Event(
            "webhook.secret_rotated",
            project=webhook.project,
            actor=by,
            audit=domain_events.Audit(target=webhook.url, detail={"webhook": webhook.pk}),
        )
    )
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook, by) -> None:
    """Delete the webhook with its delivery log; nothing pending is sent after this."""
    domain_events.record(
        domain_events.Event(
            "webhook.deleted",
            project=webhook.project,
            actor=by,
            audit=domain_events.Audit(
                target=webhook.url,
                detail={
                    "webhook": webhook.pk,
                    "events": webhook.events,
                    "deliveries": webhook.deliveries.count(),
                },
            ),
        )
    )
    webhook.delete()


# --- Queueing deliveries ----------------------------------------------------------------------


def _enqueue(delivery_id: int, countdown: float = 0) -> None:
    """Queue an attempt once the transaction commits, on the queue the current task came from
    (so a worker serving one queue keeps its retries). A broker that is down only delays the
    delivery: the sweeper finds it still due and queues it again."""
    task_enqueue(
        "loupe.webhooks.deliver", delivery_id, countdown=max(0.0, countdown) or None, robust=True
    )


@transaction.atomic
def delivery_create(*, webhook: Webhook, event: str, payload: dict) -> WebhookDelivery:
    """Queue one delivery of `event` to this webhook, sent after the caller's transaction
    commits (a rule whose action is this webhook gets its rule.fired event here, see
    apps.webhooks.subscribers)."""
    if event not in EVENTS and event != PING:
        raise ValueError(f"unknown webhook event {event!r}")
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        webhook=webhook, event=event, payload=payload, next_attempt_at=now, queued_at=now
    )
    _enqueue(delivery.pk)
    return delivery


@transaction.atomic
def event_emit(*, project, event: str, payload: dict) -> int:
    """Queue a delivery of `event` to each active webhook of `project` subscribed to it; the
    deliveries are sent after the caller's transaction commits. Returns how many were queued."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    now = timezone.now()
    webhooks = Webhook.objects.filter(project=project, active=True, events__contains=[event])
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            webhook=webhook, event=event, payload=payload, next_attempt_at=now, queued_at=now
        )
        for webhook in webhooks.only("pk")
    )
    for delivery in deliveries:
        _enqueue(delivery.pk)
    return len(deliveries)


@transaction.atomic
def webhook_ping(*, webhook: Webhook, by) -> WebhookDelivery:
    """A test send, so a receiver can be checked before real events reach it."""
    return delivery_create(
        webhook=webhook,
        event=PING,
        payload={"message": "A test send from Loupe.", "by": getattr(by, "username", "")},
    )


# --- Sending ----------------------------------------------------------------------------------


def delivery_envelope(delivery: WebhookDelivery) -> dict:
    """What a delivery sends: the event, its project and its data."""
    project = delivery.webhook.project
    return {
        "id": delivery.pk,
        "event": delivery.event,
        "created_at": delivery.created_at,
        "project": {"id": project.pk, "slug": project.slug, "name": project.name},
        "webhook": delivery.webhook_id,
        "data": delivery.payload,
    }


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The JSON body of a delivery, the same bytes on every attempt."""
    envelope = delivery_envelope(delivery)
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def delivery_headers(delivery: WebhookDelivery, body: bytes, *, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "Loupe-Webhooks",
        "X-Loupe-Event": delivery.event,
        "X-Loupe-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: signature(delivery.webhook.secret, body, timestamp),
    }


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based)."""
    return settings.LOUPE_WEBHOOK_BACKOFF_BASE * BACKOFF_FACTOR ** (attempt - 1)


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Take a due delivery for one attempt: leased until this attempt is recorded, so a second
    message for it (a sweep, a redelivery) finds it busy and leaves it alone."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("webhook__project")
            .filter(pk=delivery_id, status=Status.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None:
            return None
        if delivery.attempts >= MAX_ATTEMPTS:
            # Attempts that never came back (the worker died during them) count too.
            _finish(delivery, Status.FAILED, f"Gave up after {delivery.attempts} attempts.")
            return None
        if not delivery.webhook.active and delivery.event != PING:
            _finish(delivery, Status.FAILED, "The webhook was turned off before it was sent.")
            return None
        delivery.attempts += 1
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["attempts", "next_attempt_at"])
    return delivery


def _finish(delivery: WebhookDelivery, status: str, error: str) -> None:
    delivery.status, delivery.error, delivery.next_attempt_at = status, error, None
    delivery.save(update_fields=["status", "error", "next_attempt_at"])


def delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Send a due delivery once and record the attempt. A 2xx answer delivers it; another
    answer or a network failure schedules the next try with exponential backoff, up to
    MAX_ATTEMPTS; an address webhooks may not reach refuses it for good. Returns None when
    there is nothing to do (gone, final, not due, or being sent elsewhere).

    Not one transaction: the request may take seconds, and no row lock or open transaction is
    held meanwhile; the claim's lease keeps others away instead."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    url = delivery.webhook.url
    body = delivery_body(delivery)
    headers = delivery_headers(delivery, body, timestamp=int(time.time()))
    started = time.monotonic()
    answer, error, refused = None, "", False
    try:
        answer = transport.post(url, body, headers)
    except transport.Refused as exc:
        error, refused = f"Refused: {exc.reason}", True
        logger.warning(
            "webhook %s delivery %s to %s refused: %s",
            delivery.webhook_id,
            delivery.pk,
            url,
            exc.reason,
        )
    except transport.SendError as exc:
        error = str(exc)
    except Exception as exc:  # e.g. the task's soft time limit: recorded, then retried
        logger.exception("webhook delivery %s failed unexpectedly", delivery.pk)
        error = f"{exc.__class__.__name__}: {exc}"
    ms = answer.ms if answer else round((time.monotonic() - started) * 1000)
    if answer is not None and not 200 <= answer.status < 300:
        error = f"The receiver answered {answer.status}."
        if 300 <= answer.status < 400:
            error += " Redirects other than 307 and 308 are not followed: " + (
                "point the webhook at the final URL."
            )
    return _record(delivery, answer=answer, error=error[:ERROR_CHARS], refused=refused, ms=ms)


@transaction.atomic
def _record(
    delivery: WebhookDelivery, *, answer, error: str, refused: bool, ms: int
) -> WebhookDelivery | None:
    locked = (
        WebhookDelivery.objects.select_for_update()
        .filter(pk=delivery.pk, status=Status.PENDING)
        .first()
    )
    if locked is None:  # the webhook was deleted meanwhile
        return None
    now = timezone.now()
    entry = {
        "at": now.isoformat(),
        "status_code": answer.status if answer else None,
        "error": error,
        "ms": ms,
        "url": answer.url if answer else delivery.webhook.url,
    }
    locked.attempt_log = [*locked.attempt_log, entry]
    locked.response_status = answer.status if answer else None
    locked.response_excerpt = answer.excerpt if answer else ""
    locked.duration_ms = ms
    locked.error = error
    if answer is not None and not error:
        locked.status, locked.delivered_at, locked.next_attempt_at = Status.DELIVERED, now, None
    elif refused:
        locked.status, locked.next_attempt_at = Status.REFUSED, None
    elif locked.attempts >= MAX_ATTEMPTS:
        locked.status, locked.next_attempt_at = Status.FAILED, None
    else:
        wait = backoff(locked.attempts)
        locked.next_attempt_at, locked.queued_at = now + timedelta(seconds=wait), now
        _enqueue(locked.pk, countdown=wait)
    locked.save(
        update_fields=[
            "attempt_log",
            "response_status",
            "response_excerpt",
            "duration_ms",
            "error",
            "status",
            "delivered_at",
            "next_attempt_at",
            "queued_at",
        ]
    )
    locked.webhook = delivery.webhook
    return locked


def deliveries_retry_due(*, now=None) -> int:
    """Queue again the pending deliveries that are due but whose message has not come for a
    while: lost by the broker, or with a worker that died. Bounded per sweep."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(queued_at=None) | Q(queued_at__lte=now - REQUEUE_AFTER))
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        WebhookDelivery.objects.filter(pk__in=due).update(queued_at=now)
        for delivery_id in due:
            _enqueue(delivery_id)
    return len(due)
