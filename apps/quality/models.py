"""Scoring runs and the per-sample scores they produce."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.datasets.models import BIG_TABLE_FK, Dataset, ModelRun, Sample


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ScoringRun(models.Model):
    """One execution of the quality engine over a dataset version. Its state lives here, so a
    worker that dies is noticed (heartbeat) and the run resumed or failed, never left hanging."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="scoring_runs")
    version = models.PositiveIntegerField(help_text="Dataset version scored.")
    model_run = models.ForeignKey(
        ModelRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    stage = models.CharField(max_length=60, blank=True)
    progress = models.FloatField(default=0.0)
    attempts = models.PositiveSmallIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="Dataset-level results.")
    skipped = models.JSONField(
        default=dict, blank=True, help_text="Signal → why it was not computed."
    )
    timings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"scoring run {self.pk} of {self.dataset} v{self.version}"

    @property
    def percent(self) -> int:
        return 100 if self.status == RunStatus.DONE else min(99, int(100 * self.progress))


class ScoringChunk(models.Model):
    """A bounded piece of a run's work (a cross-validation fold, a block of rows' neighbours)
    that any worker may take. Its result goes to the media storage, shared by every worker;
    the run finishes once all its chunks are done."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="chunks")
    stage = models.CharField(max_length=20)
    index = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="Who computed it.")
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run", "stage", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "stage", "index"], name="one_chunk_per_slot")
        ]

    def __str__(self) -> str:
        return f"{self.stage} chunk {self.index} of run {self.run_id}"


class Flag(models.TextChoices):
    """What a sample was flagged for; the health page and the sample table filter by these."""

    MISLABELED = "mislabeled", "likely mislabelled"
    BOUNDARY = "boundary", "on the class boundary"
    OUTLIER = "outlier", "outliers"
    DUPLICATE = "duplicate", "near duplicates"
    LEAKED = "leaked", "in groups leaked across splits"
    CONFLICTING = "conflicting", "duplicates with conflicting labels"
    REDUNDANT = "redundant", "redundant (easy duplicates)"
    OUT_OF_COVERAGE = "out_of_coverage", "production samples outside training coverage"
    PICK = "pick", "worth labelling next"


# The scores the sample table sorts by (an index each, see SampleScore.Meta).
SORTABLE_SCORES = (
    "mislabel_score",
    "error_potential",
    "margin",
    "outlier_score",
    "knn_agreement",
    "coverage",
)


class SampleScore(models.Model):
    """What one run found about one sample, with the reasons a reviewer reads.

    A big table like the embeddings: no foreign-key constraints (deleting a run or dataset
    deletes these rows first), the primary key serves lookups by run. The sample table sorts
    a run's samples by any score and pages through them by (score, sample): one index each.
    """

    pk = models.CompositePrimaryKey("run_id", "sample_id")
    run = models.ForeignKey(ScoringRun, **BIG_TABLE_FK)
    sample = models.ForeignKey(Sample, **{**BIG_TABLE_FK, "related_name": "scores"})
    suggested_label = models.TextField(null=True, blank=True)  # noqa: DJ001 - NULL: no suggestion
    likely_mislabeled = models.BooleanField(default=False)
    mislabel_score = models.FloatField(null=True, blank=True)
    error_potential = models.FloatField(null=True, blank=True)
    margin = models.FloatField(null=True, blank=True)
    outlier_score = models.FloatField(null=True, blank=True)
    knn_agreement = models.FloatField(null=True, blank=True)
    duplicate_group = models.IntegerField(null=True, blank=True)
    cluster = models.IntegerField(null=True, blank=True)
    x = models.FloatField(null=True, blank=True)
    y = models.FloatField(null=True, blank=True)
    coverage = models.FloatField(
        null=True, blank=True, help_text="Production samples: k-th neighbour distance percentile."
    )
    flags = ArrayField(
        models.CharField(max_length=20, choices=Flag.choices), default=list, blank=True
    )
    reasons = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            *(
                models.Index(fields=["run", score, "sample"], name=f"score_{score}")
                for score in SORTABLE_SCORES
            ),
            models.Index(fields=["run", "cluster"], name="score_cluster"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id}, sample {self.sample_id}"


class ScoringPolicy(models.Model):
    """A project's choice to score its datasets again by itself when their data change. A
    project without a row has never chosen: nothing is scored by itself."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, related_name="scoring_policy"
    )
    after_changes = models.BooleanField(
        default=False,
        help_text="Score a dataset's newest version after each import and committed version.",
    )

    def __str__(self) -> str:
        return f"scoring policy of {self.project}"
