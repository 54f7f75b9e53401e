"""The collaboration layer: comments, review sessions and their votes, decisions, the consensus
policy, the activity feed and notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import ngettext

from apps.annotations.base import VoteChoice
from apps.datasets.models import Dataset, LabelEvent, Sample
from apps.projects.models import Project
from apps.quality.models import ScoringRun


class ConsensusPolicy(models.Model):
    """How a project turns votes into decisions."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="consensus")
    min_votes = models.PositiveSmallIntegerField(
        default=2, help_text="Votes a sample needs (unsure ones not counted) before consensus."
    )
    agreement = models.FloatField(
        default=0.66, help_text="Share of those votes the winning choice needs, 0.5 to 1."
    )
    reviewers_adjudicate = models.BooleanField(
        default=False, help_text="Reviewers may decide directly too, not only curators."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(agreement__gte=0.5, agreement__lte=1.0), name="agreement_in_range"
            ),
            models.CheckConstraint(condition=Q(min_votes__gte=1), name="at_least_one_vote"),
        ]

    def __str__(self) -> str:
        return ngettext(
            "%(n)s vote, %(agreement)s agreement",
            "%(n)s votes, %(agreement)s agreement",
            self.min_votes,
        ) % {"n": self.min_votes, "agreement": f"{self.agreement:.0%}"}


# A vote's choices are the same for every task type; the task registry reads votes by them.
Choice = VoteChoice


class ReviewSession(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_sessions")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="review_sessions")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    query = models.JSONField(default=dict, blank=True, help_text="The query its queue came from.")
    ordering = models.CharField(max_length=40, blank=True)
    run = models.ForeignKey(ScoringRun, on_delete=models.SET_NULL, null=True, blank=True)
    blind = models.BooleanField(default=False, help_text="Tallies hidden until one has voted.")
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    participants = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Participant", related_name="review_sessions"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class Participant(models.Model):
    session = models.ForeignKey(ReviewSession, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "user"], name="one_participation")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.session}"


class SessionItem(models.Model):
    """A sample in a session's queue, in the queue's order (fixed when the session starts)."""

    session = models.ForeignKey(ReviewSession, on_delete=models.CASCADE, related_name="items")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["session", "position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "sample"], name="sample_once_per_session"),
            models.UniqueConstraint(fields=["session", "position"], name="one_item_per_position"),
        ]

    def __str__(self) -> str:
        return f"{self.position}: {self.sample_id}"


class Vote(models.Model):
    """One reviewer's vote on one sample in one session (changeable while the session is open)."""

    session = models.ForeignKey(ReviewSession, on_delete=models.CASCADE, related_name="votes")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="+")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    choice = models.CharField(max_length=10, choices=Choice.choices)
    label = models.TextField(null=True, blank=True)  # noqa: DJ001 - only for relabel
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "sample", "voter"], name="one_vote_per_reviewer_and_sample"
            ),
            models.CheckConstraint(
                condition=(Q(choice="relabel") & Q(label__isnull=False))
                | (~Q(choice="relabel") & Q(label__isnull=True)),
                name="label_only_for_relabel",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.voter_id}: {self.choice} {self.label or ''}".strip()


class Decision(models.Model):
    """What happens to a sample: by consensus of a session's votes, or an adjudicator's word.
    Applying it puts a change in the draft and commits a version; `event` is that change."""

    class Source(models.TextChoices):
        CONSENSUS = "consensus", "Consensus"
        ADJUDICATOR = "adjudicator", "Adjudicator"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="decisions")
    session = models.ForeignKey(
        ReviewSession, on_delete=models.CASCADE, null=True, blank=True, related_name="decisions"
    )
    outcome = models.CharField(max_length=10, choices=Choice.choices)
    label = models.TextField(null=True, blank=True)  # noqa: DJ001 - only for relabel
    source = models.CharField(max_length=12, choices=Source.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    reason = models.TextField(blank=True)
    tally = models.JSONField(default=dict, blank=True, help_text="The votes behind it.")
    created_at = models.DateTimeField(auto_now_add=True)
    event = models.OneToOneField(
        LabelEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="decision"
    )
    version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "sample"],
                condition=Q(session__isnull=False),
                name="one_decision_per_session_sample",
            ),
            models.CheckConstraint(condition=~Q(outcome="unsure"), name="a_decision_is_not_unsure"),
        ]

    def __str__(self) -> str:
        return f"{self.sample_id}: {self.outcome} {self.label or ''}".strip()


class Comment(models.Model):
    """A comment on a sample, a cluster of a run, or a review session; replies form a thread."""

    thread_replies: list[Comment]  # not a column: set by selectors.thread for display

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comments")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, null=True, related_name="+")
    sample = models.ForeignKey(
        Sample, on_delete=models.CASCADE, null=True, blank=True, related_name="comments"
    )
    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, null=True, blank=True)
    cluster = models.IntegerField(null=True, blank=True)
    session = models.ForeignKey(
        ReviewSession, on_delete=models.CASCADE, null=True, blank=True, related_name="comments"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["sample", "created_at"], name="comment_sample")]

    def __str__(self) -> str:
        return f"comment {self.pk} by {self.author_id}"


class Activity(models.Model):
    """One line of a project's activity feed."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="activity")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    verb = models.CharField(max_length=300)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="activity_feed")]

    def __str__(self) -> str:
        return self.verb


class Notification(models.Model):
    class Kind(models.TextChoices):
        MENTION = "mention", "Mention"
        SESSION = "session", "Assigned to a session"
        DECISION = "decision", "Decision"
        BATCH = "batch", "Relabel batch"
        RULE = "rule", "Rule"
        DRIFT = "drift", "Drift alert"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    text = models.CharField(max_length=300)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return self.text
