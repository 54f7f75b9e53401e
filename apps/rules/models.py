"""Rules: saved queries that act on what scoring finds, after each run or on a schedule."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import BIG_TABLE_FK, Dataset, Sample
from apps.explorer import actions
from apps.projects.models import Project


class Trigger(models.TextChoices):
    AFTER_SCORING = "after_scoring", "After every scoring run"
    SCHEDULE = "schedule", "On a schedule"


class ActionType(models.TextChoices):
    """The names of the installed apps' rule actions, for code and tests that name one. Which
    actions a rule may take, and what they are called, the registry says (`actions.for_rules()`)."""

    TAG = "tag"
    REVIEW = "review"
    VENDOR_BATCH = "vendor_batch"
    ACTIVE_PICK = "active_pick"
    NOTIFY = "notify"
    WEBHOOK = "webhook"


# Schedules a rule may keep, in minutes (Celery beat checks every minute what is due).
SCHEDULES = [(60, "Every hour"), (360, "Every 6 hours"), (1440, "Every day"), (10080, "Every week")]


class Rule(models.Model):
    """A saved query, a trigger and one action. A rule acts at most once on a sample (see
    RuleHit): it never tags, queues or sends the same sample twice."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rules")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=120)
    query = models.JSONField(default=dict, blank=True, help_text="In the sample query language.")
    ordering = models.CharField(
        max_length=40, blank=True, help_text="Which matches go first when a run is capped."
    )
    trigger = models.CharField(
        max_length=20, choices=Trigger.choices, default=Trigger.AFTER_SCORING
    )
    schedule_minutes = models.PositiveIntegerField(
        null=True, blank=True, choices=SCHEDULES, help_text="For scheduled rules."
    )
    # The name of a rule action of the registry (`actions.for_rules()`), checked by the service:
    # no choices here, so that an app adds an action without a migration of rules.
    action_type = models.CharField(max_length=20)
    action = models.JSONField(default=dict, help_text="The action's settings, type included.")
    max_per_run = models.PositiveIntegerField(
        default=1000, help_text="The most samples one run acts on."
    )
    enabled = models.BooleanField(default=False)
    state = models.JSONField(
        default=dict, blank=True, help_text="The session or batch the rule is filling."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    changed_at = models.DateTimeField(auto_now=True)
    dry_run_at = models.DateTimeField(
        null=True, blank=True, help_text="Last dry run since the rule last changed."
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True, help_text="Scheduled rules.")

    class Meta:
        ordering = ["dataset", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="unique_rule_name"),
        ]
        indexes = [
            models.Index(
                fields=["next_run_at"],
                name="rule_due",
                condition=models.Q(enabled=True, trigger="schedule"),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_action_type_display(self) -> str:
        """What the action is called (as Django names it for a field with choices)."""
        action = actions.find(self.action_type)
        return action.label if action is not None and action.label else self.action_type


class RuleRun(models.Model):
    """One run of a rule: when, why, how many samples matched and how many it acted on."""

    class Status(models.TextChoices):
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Why(models.TextChoices):
        SCORING = "scoring", "Scoring run finished"
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Run by hand"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="runs")
    why = models.CharField(max_length=10, choices=Why.choices)
    scoring_run = models.ForeignKey(
        "quality.ScoringRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices)
    matched = models.PositiveIntegerField(default=0, help_text="Samples the query matched.")
    new = models.PositiveIntegerField(default=0, help_text="Of those, not acted on before.")
    acted_on = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule} at {self.started_at:%Y-%m-%d %H:%M}"


class RuleHit(models.Model):
    """A sample a rule acted on. The primary key is what makes a rule act once per sample."""

    pk = models.CompositePrimaryKey("rule_id", "sample_id")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="+")
    sample = models.ForeignKey(Sample, **BIG_TABLE_FK)
    run = models.ForeignKey(RuleRun, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"rule {self.rule_id} acted on sample {self.sample_id}"
