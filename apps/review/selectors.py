"""Reads for collaboration: a session's queue and progress, tallies, threads, the feed."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from apps import annotations as task_types
from apps.datasets.models import DatasetVersion, ImportJob, JobStatus
from apps.projects.capabilities import Role
from apps.projects.models import Membership, Project
from apps.quality.models import RunStatus, ScoringRun
from apps.review.models import (
    Comment,
    Decision,
    Notification,
    Participant,
    ReviewSession,
    SessionItem,
    Vote,
)


def progress(session: ReviewSession) -> dict:
    """Per participant: samples voted on, and when last active; the session's overall share."""
    items = session.items.count()
    voted = dict(
        Vote.objects.filter(session=session)
        .values("voter_id")
        .annotate(n=Count("id"), last=Max("updated_at"))
        .values_list("voter_id", "n")
    )
    people = []
    now = timezone.now()
    for p in (
        Participant.objects.filter(session=session)
        .select_related("user")
        .order_by("user__username")
    ):
        done = voted.get(p.user_id, 0)
        active = p.last_seen_at is not None and (now - p.last_seen_at).total_seconds() < 120
        people.append(
            {
                "username": p.user.username,
                "done": done,
                "percent": round(100 * done / items) if items else 0,
                "last_seen_at": p.last_seen_at,
                "active": active,
            }
        )
    reviewed = Vote.objects.filter(session=session).values("sample_id").distinct().count()
    return {
        "items": items,
        "reviewed": reviewed,
        "percent": round(100 * reviewed / items) if items else 0,
        "people": people,
    }


def item_at(session: ReviewSession, position: int) -> SessionItem | None:
    return session.items.select_related("sample").filter(position=position).first()


def votes_on(session: ReviewSession, sample_id: int) -> list[Vote]:
    return list(Vote.objects.filter(session=session, sample_id=sample_id).select_related("voter"))


def visible_tally(session: ReviewSession, sample_id: int, user) -> dict | None:
    """The sample's tally, or None while a blind session hides it from someone who has not
    voted on the sample yet."""
    votes = votes_on(session, sample_id)
    if session.blind and session.is_open and not any(v.voter_id == user.pk for v in votes):
        return None
    return {"counts": task_types.of(session.dataset).review.tally(votes), "votes": votes}


def decisions_of(session: ReviewSession) -> QuerySet[Decision]:
    return session.decisions.select_related("sample", "decided_by", "event").order_by("sample_id")


def thread(**where) -> list[Comment]:
    """Top-level comments with their replies, oldest first."""
    comments = list(
        Comment.objects.filter(**where).select_related("author").order_by("created_at", "id")
    )
    replies: dict[int, list[Comment]] = {}
    for c in comments:
        if c.parent_id:
            replies.setdefault(c.parent_id, []).append(c)
    top = [c for c in comments if not c.parent_id]
    for c in top:
        c.thread_replies = replies.get(c.pk, [])
    return top


@dataclass
class FeedItem:
    actor: object
    verb: str
    url: str
    created_at: object


def feed(project, limit: int = 100) -> list:
    """The project's activity, newest first: review and comments (Activity rows), with the
    versions committed, the imports done and the scoring runs finished, read where they live."""
    from django.urls import reverse

    items = list(project.activity.select_related("actor")[:limit])
    for v in (
        DatasetVersion.objects.filter(dataset__project=project)
        .select_related("author", "dataset")
        .order_by("-created_at")[:limit]
    ):
        items.append(
            FeedItem(
                v.author,
                f"committed version {v.number} of {v.dataset.name}: {v.message or 'no message'}",
                reverse("datasets:versions", args=[v.dataset_id]),
                v.created_at,
            )
        )
    for job in (
        ImportJob.objects.filter(project=project, status=JobStatus.DONE)
        .select_related("created_by", "dataset")
        .order_by("-created_at")[:limit]
    ):
        items.append(
            FeedItem(
                job.created_by,
                f"imported {job.file_name} into {job.dataset.name}",
                reverse("datasets:detail", args=[job.dataset_id]),
                job.finished_at or job.created_at,
            )
        )
    for run in (
        ScoringRun.objects.filter(dataset__project=project, status=RunStatus.DONE)
        .select_related("created_by", "dataset")
        .order_by("-created_at")[:limit]
    ):
        items.append(
            FeedItem(
                run.created_by,
                f"scored {run.dataset.name} v{run.version}: "
                f"{run.summary.get('likely_mislabeled', 0)} likely mislabelled",
                reverse("datasets:health", args=[run.dataset_id]),
                run.finished_at or run.created_at,
            )
        )
    items.sort(key=lambda item: item.created_at, reverse=True)
    return items[:limit]


def unread_count(user) -> int:
    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, read_at=None).count()


def notifications_of(user, limit: int = 100) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).select_related("project")[:limit]


def decisions_for_events(event_ids) -> dict[int, Decision]:
    """The review decisions behind label changes, by change (event) id."""
    found = Decision.objects.filter(event_id__in=list(event_ids)).select_related(
        "session", "decided_by"
    )
    return {d.event_id: d for d in found if d.event_id is not None}


MENTION_SUGGESTIONS = 8


def mentionable(project: Project, *, by, prefix: str) -> list[dict]:
    """Members of the project whose username, first or last name starts with `prefix`: the
    people an @mention in a comment notifies (never the writer, never a vendor, who cannot see
    comments), at most a handful, by username."""
    prefix = prefix.strip()
    members = (
        Membership.objects.filter(project=project)
        .exclude(role=Role.VENDOR)
        .exclude(user=by)
        .select_related("user")
        .order_by("user__username")
    )
    if prefix:
        members = members.filter(
            Q(user__username__istartswith=prefix)
            | Q(user__first_name__istartswith=prefix)
            | Q(user__last_name__istartswith=prefix)
        )
    return [
        {"username": m.user.username, "name": m.user.get_full_name()}
        for m in members[:MENTION_SUGGESTIONS]
    ]
