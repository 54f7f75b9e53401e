"""Writes for collaboration: comments with mentions, review sessions, votes, consensus,
adjudication, and decisions applied as a new dataset version."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urljoin

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from apps import annotations as task_types
from apps.core import events
from apps.core.links import sample_table_url
from apps.datasets import services as dataset_services
from apps.datasets.models import Dataset, LabelSource, Sample
from apps.explorer.selectors import samples_chosen
from apps.projects.capabilities import Cap
from apps.projects.models import Membership, Project
from apps.review.models import (
    Activity,
    Choice,
    Comment,
    ConsensusPolicy,
    Decision,
    Notification,
    Participant,
    ReviewSession,
    SessionItem,
    Vote,
)

SESSION_MAX_ITEMS = 5_000
COMMENT_MAX = 10_000
MENTION = re.compile(r"(?<![\w@])@([\w.+-]+)")


def policy_of(project: Project) -> ConsensusPolicy:
    """The project's consensus policy (the defaults until someone changes them)."""
    policy, _ = ConsensusPolicy.objects.get_or_create(project=project)
    return policy


@transaction.atomic
def policy_update(
    *, project: Project, min_votes: int, agreement: float, reviewers_adjudicate: bool
) -> ConsensusPolicy:
    if not 1 <= min_votes <= 50:
        raise ValidationError({"min_votes": "Between 1 and 50 votes."})
    if not 0.5 <= agreement <= 1.0:
        raise ValidationError({"agreement": "A share from 0.5 to 1."})
    policy = policy_of(project)
    policy.min_votes, policy.agreement = min_votes, agreement
    policy.reviewers_adjudicate = reviewers_adjudicate
    policy.save(update_fields=["min_votes", "agreement", "reviewers_adjudicate"])
    return policy


def activity_add(*, project: Project, actor, verb: str, url: str = "") -> Activity:
    return Activity.objects.create(project=project, actor=actor, verb=verb[:300], url=url)


def notify(
    *, users, project: Project, kind: str, text: str, url: str = "", site_url: str = ""
) -> int:
    """In-app notifications, and an e-mail to each user who has an address (after commit)."""
    users = [u for u in users if u is not None]
    Notification.objects.bulk_create(
        Notification(user=u, project=project, kind=kind, text=text[:300], url=url) for u in users
    )
    recipients = [u.email for u in users if u.email]
    if recipients:
        base = site_url or settings.LOUPE_SITE_URL
        link = urljoin(base, url) if base else url

        def send() -> None:
            for address in recipients:
                send_mail(
                    f"[Loupe] {text[:120]}",
                    f"{text}\n\n{link}\n",
                    settings.DEFAULT_FROM_EMAIL,
                    [address],
                    fail_silently=True,
                )

        transaction.on_commit(send)
    return len(users)


@transaction.atomic
def notifications_read(*, user, ids=None) -> int:
    unread = Notification.objects.filter(user=user, read_at=None)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())


# --- Comments -------------------------------------------------------------------------------------


def _body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "Write something first."})
    if len(body) > COMMENT_MAX:
        raise ValidationError({"body": f"At most {COMMENT_MAX:,} characters."})
    return body


def _mentioned(project: Project, body: str, author) -> list:
    names = {m.lower() for m in MENTION.findall(body)}
    if not names:
        return []
    members = Membership.objects.filter(project=project).select_related("user")
    return [
        m.user
        for m in members
        if m.user.username.lower() in names and m.user != author and m.role != "vendor"
    ]


def comment_url(comment: Comment) -> str:
    if comment.sample_id:
        return reverse("datasets:sample", args=[comment.dataset_id, comment.sample_id])
    if comment.session_id:
        return reverse("review:session", args=[comment.session_id])
    query = {"field": "cluster", "op": "=", "value": comment.cluster}
    return sample_table_url(comment.dataset_id, query, run=comment.run_id)


@transaction.atomic
def comment_create(
    *,
    project: Project,
    author,
    body: str,
    dataset: Dataset | None = None,
    sample: Sample | None = None,
    session: ReviewSession | None = None,
    run=None,
    cluster: int | None = None,
    parent: Comment | None = None,
    site_url: str = "",
) -> Comment:
    """A comment on one thing (a sample, a cluster of a run, a session), or a reply to one.
    @username mentions of project members notify them."""
    body = _body(body)
    if parent is not None:
        if parent.project_id != project.pk or parent.deleted:
            raise ValidationError({"parent": "Reply to a comment of this thread."})
        dataset, sample, session = parent.dataset, parent.sample, parent.session
        run, cluster = parent.run, parent.cluster
        parent = parent.parent or parent  # one level of replies: a thread
    if sample is None and session is None and (run is None or cluster is None):
        raise ValidationError({"detail": "A comment is on a sample, a cluster or a session."})
    comment = Comment.objects.create(
        project=project,
        dataset=dataset or (sample.dataset if sample else session.dataset if session else None),
        sample=sample,
        session=session,
        run=run,
        cluster=cluster,
        parent=parent,
        author=author,
        body=body,
    )
    url = comment_url(comment)
    where = (
        f"sample {sample.external_id}"
        if sample
        else f"session “{session.title}”"
        if session
        else f"cluster {cluster}"
    )
    events.record(
        events.Event(
            "comment.created",
            project=project,
            actor=author,
            activity=f"commented on {where}",
            url=url,
            notice=events.Notice(
                users=tuple(_mentioned(project, body, author)),
                kind=Notification.Kind.MENTION,
                text=f"{author.username} mentioned you on {where}",
                url=url,
                site_url=site_url,
            ),
        )
    )
    return comment


@transaction.atomic
def comment_edit(*, comment: Comment, by, body: str) -> Comment:
    if comment.author_id != by.pk or comment.deleted:
        raise ValidationError({"detail": "Only its author can edit a comment."})
    comment.body = _body(body)
    comment.edited_at = timezone.now()
    comment.save(update_fields=["body", "edited_at"])
    return comment


@transaction.atomic
def comment_delete(*, comment: Comment, by) -> None:
    """Its author deletes a comment; the thread keeps its place, saying it was deleted."""
    if comment.author_id != by.pk:
        raise ValidationError({"detail": "Only its author can delete a comment."})
    events.record(
        events.Event(
            "comment.deleted",
            project=comment.project,
            actor=by,
            audit=events.Audit(
                target=f"comment {comment.pk}",
                detail={
                    "on": (
                        f"sample {comment.sample.external_id}"
                        if comment.sample is not None
                        else f"review session {comment.session_id}"
                        if comment.session_id
                        else f"cluster {comment.cluster} of scoring run {comment.run_id}"
                    ),
                    "dataset_id": comment.dataset_id,
                },
            ),
        )
    )
    comment.deleted, comment.body = True, ""
    comment.save(update_fields=["deleted", "body"])


# --- Review sessions ------------------------------------------------------------------------------


@transaction.atomic
def session_create(
    *,
    dataset: Dataset,
    by,
    title: str,
    query=None,
    ordering: str = "",
    run=None,
    participants=(),
    blind: bool = False,
    due_date=None,
    description: str = "",
    ids=None,
    samples=None,
    site_url: str = "",
) -> ReviewSession:
    """A session whose queue is the samples of a query (a saved view's, a selection's) in its
    ordering, fixed now: at most SESSION_MAX_ITEMS; or the given `samples` of the dataset, in
    their order (a rule's matches). Participants must be able to vote."""
    title = (title or "").strip()
    if not title:
        raise ValidationError({"title": "Give the session a title."})
    people = list(participants)
    if not people:
        raise ValidationError({"participants": "Name at least one participant."})
    roles = dict(
        Membership.objects.filter(project=dataset.project, user__in=people).values_list(
            "user_id", "role"
        )
    )
    for user in people:
        member = Membership(role=roles[user.pk]) if user.pk in roles else None
        if member is None or not member.can(Cap.COMMENT):
            raise ValidationError({"participants": f"{user.username} cannot vote in this project."})
    samples = samples_chosen(
        dataset,
        query=query,
        run=run,
        ordering=ordering,
        ids=ids,
        samples=samples,
        limit=SESSION_MAX_ITEMS,
    )
    if not samples:
        raise ValidationError({"query": "No sample matches: the session would be empty."})
    session = ReviewSession.objects.create(
        project=dataset.project,
        dataset=dataset,
        title=title,
        description=description,
        query=query or {},
        ordering=ordering or "",
        run=run,
        blind=blind,
        due_date=due_date,
        created_by=by,
    )
    SessionItem.objects.bulk_create(
        SessionItem(session=session, sample=s, position=i) for i, s in enumerate(samples)
    )
    Participant.objects.bulk_create(Participant(session=session, user=u) for u in people)
    url = reverse("review:session", args=[session.pk])
    events.record(
        events.Event(
            "session.created",
            project=dataset.project,
            actor=by,
            activity=ngettext(
                "started review session “%(title)s” (%(n)s sample)",
                "started review session “%(title)s” (%(n)s samples)",
                len(samples),
            )
            % {"title": title, "n": len(samples)},
            url=url,
            notice=events.Notice(
                users=tuple(u for u in people if u != by),
                kind=Notification.Kind.SESSION,
                text=f"{by.username} added you to review session “{title}”",
                url=url,
                site_url=site_url,
            ),
        )
    )
    return session


@transaction.atomic
def session_items_add(*, session: ReviewSession, samples, by) -> int:
    """Append samples of the session's dataset to the end of an open session's queue; samples
    already in it are left where they are. Returns how many were added."""
    session = ReviewSession.objects.select_for_update().get(pk=session.pk)
    if session.status != ReviewSession.Status.OPEN:
        raise ValidationError({"session": f"Session “{session.title}” is closed."})
    fresh = dataset_services.queue_append(
        items=session.items,
        dataset_id=session.dataset_id,
        samples=samples,
        limit=SESSION_MAX_ITEMS,
        make=lambda s, position: SessionItem(session=session, sample=s, position=position),
    )
    if fresh:
        events.record(
            events.Event(
                "session.items_added",
                project=session.project,
                actor=by,
                activity=ngettext(
                    "added %(n)s sample to review session “%(title)s”",
                    "added %(n)s samples to review session “%(title)s”",
                    len(fresh),
                )
                % {"n": len(fresh), "title": session.title},
                url=reverse("review:session", args=[session.pk]),
            )
        )
    return len(fresh)


def vote_cast(
    *, session: ReviewSession, sample: Sample, voter, choice: str, label: str | None = None
) -> Vote:
    """Record (or change) the voter's vote on the sample. The session row is share-locked, so a
    vote and the session's closing never overlap: a vote lands before the close, or is refused.
    The unique constraint keeps one vote per reviewer and sample however often it is sent."""
    if choice not in Choice.values:
        raise ValidationError({"choice": f"Vote {', '.join(Choice.values)}."})
    if choice == Choice.RELABEL:
        dataset = session.dataset
        if problem := task_types.of(dataset).values.check(label, schema=dataset.labels):
            raise ValidationError({"label": problem.message})
    else:
        label = None
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(
                "SELECT status FROM review_reviewsession WHERE id = %s FOR SHARE", [session.pk]
            )
            row = cur.fetchone()
        if row is None or row[0] != ReviewSession.Status.OPEN:
            raise ValidationError({"detail": "The session is closed: votes can no longer change."})
        if not Participant.objects.filter(session=session, user=voter).exists():
            raise ValidationError({"detail": "Only the session's participants vote in it."})
        if not SessionItem.objects.filter(session=session, sample=sample).exists():
            raise ValidationError({"sample": "That sample is not in this session."})
        vote, _ = Vote.objects.update_or_create(
            session=session,
            sample=sample,
            voter=voter,
            defaults={"choice": choice, "label": label},
        )
        Participant.objects.filter(session=session, user=voter).update(last_seen_at=timezone.now())
    return vote


@transaction.atomic
def session_close(*, session: ReviewSession, by, site_url: str = "") -> ReviewSession:
    """Close the session (no more votes) and turn its votes into decisions by the project's
    consensus policy; the summary keeps decisions, disagreements and time spent."""
    locked = ReviewSession.objects.select_for_update().get(pk=session.pk)
    if not locked.is_open:
        raise ValidationError({"detail": "The session is already closed."})
    policy = policy_of(locked.project)
    kind = task_types.of(locked.dataset)
    votes: dict[int, list[Vote]] = {}
    for vote in Vote.objects.filter(session=locked).order_by("sample_id", "id"):
        votes.setdefault(vote.sample_id, []).append(vote)
    decided, disagreements = 0, []
    for sample_id, sample_votes in votes.items():
        counts = kind.review.tally(sample_votes)
        winner = kind.review.consensus(counts, policy)
        if winner is None:
            disagreements.append({"sample": sample_id, "tally": counts})
            continue
        outcome, label = winner
        Decision.objects.update_or_create(
            session=locked,
            sample_id=sample_id,
            defaults={
                "dataset": locked.dataset,
                "outcome": outcome,
                "label": label,
                "source": Decision.Source.CONSENSUS,
                "decided_by": None,
                "reason": ngettext(
                    "%(top)s of %(n)s vote", "%(top)s of %(n)s votes", sum(counts.values())
                )
                % {"top": max(counts.values()), "n": sum(counts.values())},
                "tally": counts,
            },
        )
        decided += 1
    spans: dict[str, tuple[datetime, datetime]] = {}
    for row in Vote.objects.filter(session=locked).values("voter__username", "created_at"):
        first, last = spans.get(row["voter__username"], (row["created_at"], row["created_at"]))
        spans[row["voter__username"]] = (
            min(first, row["created_at"]),
            max(last, row["created_at"]),
        )
    now = timezone.now()
    locked.status, locked.closed_at = ReviewSession.Status.CLOSED, now
    locked.summary = {
        "items": locked.items.count(),
        "voted": len(votes),
        "votes": sum(len(v) for v in votes.values()),
        "decided": decided,
        "disagreements": disagreements[:200],
        "disagreement_count": len(disagreements),
        "minutes": round((now - locked.created_at).total_seconds() / 60, 1),
        "minutes_by_participant": {
            name: round((last - first).total_seconds() / 60, 1)
            for name, (first, last) in spans.items()
        },
        "policy": {"min_votes": policy.min_votes, "agreement": policy.agreement},
    }
    locked.save(update_fields=["status", "closed_at", "summary"])
    url = reverse("review:session", args=[locked.pk])
    events.record(
        events.Event(
            "session.closed",
            project=locked.project,
            actor=by,
            payload={
                "session": {"id": locked.pk, "title": locked.title},
                "dataset": {"id": locked.dataset_id, "name": locked.dataset.name},
                "decided": decided,
                "disagreements": len(disagreements),
                "url": url,
            },
            activity=ngettext(
                "closed review session “%(title)s”: %(n)s decision, %(open)s without consensus",
                "closed review session “%(title)s”: %(n)s decisions, %(open)s without consensus",
                decided,
            )
            % {"title": locked.title, "n": decided, "open": len(disagreements)},
            url=url,
            notice=events.Notice(
                users=tuple(p for p in locked.participants.all() if p != by),
                kind=Notification.Kind.DECISION,
                text=ngettext(
                    "“%(title)s” closed with %(n)s decision",
                    "“%(title)s” closed with %(n)s decisions",
                    decided,
                )
                % {"title": locked.title, "n": decided},
                url=url,
                site_url=site_url,
            ),
        )
    )
    return locked


@transaction.atomic
def decision_adjudicate(
    *,
    dataset: Dataset,
    sample: Sample,
    by,
    outcome: str,
    label: str | None = None,
    reason: str,
    session: ReviewSession | None = None,
) -> Decision:
    """An adjudicator's decision, with the reason; it replaces the session's consensus one."""
    if outcome not in (Choice.KEEP, Choice.RELABEL, Choice.REMOVE):
        raise ValidationError({"outcome": "Outcome: choose keep, relabel or remove."})
    kind = task_types.of(dataset)
    if outcome == Choice.RELABEL and (problem := kind.values.check(label, schema=dataset.labels)):
        raise ValidationError({"label": problem.message})
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why: the decision keeps it."})
    counts = (
        kind.review.tally(Vote.objects.filter(session=session, sample=sample)) if session else {}
    )
    fields = {
        "dataset": dataset,
        "outcome": outcome,
        "label": label if outcome == Choice.RELABEL else None,
        "source": Decision.Source.ADJUDICATOR,
        "decided_by": by,
        "reason": reason.strip(),
        "tally": counts,
    }
    if session is not None:
        existing = Decision.objects.filter(session=session, sample=sample).first()
        if existing is not None and existing.event_id:
            raise ValidationError({"detail": "This decision is already in a version."})
        decision, _ = Decision.objects.update_or_create(
            session=session, sample=sample, defaults=fields
        )
    else:
        decision = Decision.objects.create(sample=sample, session=None, **fields)
    events.record(
        events.Event(
            "decision.adjudicated",
            project=dataset.project,
            actor=by,
            activity=f"decided {outcome}{f' to {label}' if outcome == Choice.RELABEL else ''} "
            f"for sample {sample.external_id}",
            url=reverse("datasets:sample", args=[dataset.pk, sample.pk]),
        )
    )
    return decision


@transaction.atomic
def decisions_apply(*, session: ReviewSession, by, message: str = ""):
    """Put the session's decisions that change something in the draft, and commit the draft
    as a new version; each decision keeps the change it made (event) and the version."""
    if session.is_open:
        raise ValidationError({"detail": "Close the session first."})
    pending = list(
        Decision.objects.filter(session=session, event=None)
        .exclude(outcome=Choice.KEEP)
        .select_related("sample", "decided_by")
    )
    if not pending:
        raise ValidationError({"detail": "No decision changes a label: nothing to apply."})
    for decision in pending:
        who = decision.decided_by.username if decision.decided_by else "consensus"
        reason = f"Review “{session.title}”: {who}, {decision.reason}"
        if decision.outcome == Choice.REMOVE:
            event = dataset_services.sample_remove(
                sample=decision.sample, by=by, reason=reason, source=LabelSource.REVIEW
            )
        else:
            if decision.sample.label == decision.label:
                continue
            event = dataset_services.sample_relabel(
                sample=decision.sample,
                label=decision.label,
                by=by,
                reason=reason,
                source=LabelSource.REVIEW,
            )
        decision.event = event
        decision.save(update_fields=["event"])
    version = dataset_services.version_commit(
        dataset=session.dataset,
        by=by,
        message=message or f"Decisions of review session “{session.title}”",
    )
    Decision.objects.filter(session=session, event__isnull=False, version=None).update(
        version=version.number
    )
    events.record(
        events.Event(
            "decisions.applied",
            project=session.project,
            actor=by,
            activity=f"applied the decisions of “{session.title}” as version {version.number}",
            url=reverse("datasets:versions", args=[session.dataset_id]),
        )
    )
    return version


def participant_seen(*, session: ReviewSession, user) -> None:
    Participant.objects.filter(session=session, user=user).update(last_seen_at=timezone.now())
