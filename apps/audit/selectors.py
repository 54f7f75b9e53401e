"""Reading the audit log. Access (owners only) is checked by the caller through
apps.projects.access with Cap.AUDIT."""

from __future__ import annotations

import datetime as dt

from django.db.models import CharField, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from apps.audit.actions import FAMILIES
from apps.audit.models import AuditEvent
from apps.projects.models import Membership, Project


def _start_of(day: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(day, dt.datetime):
        return day if timezone.is_aware(day) else timezone.make_aware(day)
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def audit_events_for_project(
    project: Project,
    *,
    action: str | None = None,
    actor=None,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The project's events, newest first, with the account-level events (API tokens) of the
    people who are members now, so an owner sees that a member made a token.

    `action` is a family of FAMILIES or one action name; `actor` a user or a username (matched
    on the name kept with the event, so people who have left can still be found); `since` and
    `until` are days (both included) or moments.

    An account-level event has no project and never had one (no project name): events of a
    deleted project lose their project too, but keep its name, and stay out of other logs.
    """
    members = Membership.objects.filter(project=project)
    account = Q(project__isnull=True, project_name="") & (
        Q(actor_id__in=members.values("user_id"))
        # An operator may act on a member's account (manage.py create_api_token).
        | Q(account_user__in=members.annotate(uid=Cast("user_id", CharField())).values("uid"))
    )
    events = AuditEvent.objects.alias(account_user=KeyTextTransform("user_id", "detail")).filter(
        Q(project=project) | account
    )
    if action:
        family = FAMILIES.get(action)
        events = events.filter(family[1] if family else Q(action=action))
    if actor is not None and actor != "":
        if isinstance(actor, str):
            events = events.filter(actor_name__iexact=actor.strip())
        else:
            events = events.filter(actor_id=getattr(actor, "pk", actor))
    if since is not None:
        events = events.filter(created_at__gte=_start_of(since))
    if until is not None:
        if isinstance(until, dt.datetime):
            events = events.filter(created_at__lte=_start_of(until))
        elif until < dt.date.max:  # the last day of the calendar has no next day to stop at
            events = events.filter(created_at__lt=_start_of(until + dt.timedelta(days=1)))
    return events.order_by("-created_at", "-id")


def audit_events_of_user(user, *, limit: int = 10) -> QuerySet[AuditEvent]:
    """The newest account-level events of the user's own account (their API tokens)."""
    return AuditEvent.objects.filter(
        Q(actor=user) | Q(detail__user_id=user.pk), project__isnull=True, project_name=""
    ).order_by("-created_at", "-id")[:limit]
