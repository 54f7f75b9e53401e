"""Production monitoring: each project's drift policy and the drift checks of time windows."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import Dataset
from apps.quality.models import ScoringRun


class MonitoringPolicy(models.Model):
    """How a project's production samples are checked for drift (one per project; the
    defaults until someone with the curate capability changes them)."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, related_name="monitoring"
    )
    window_hours = models.PositiveSmallIntegerField(
        default=24, help_text="Length of a time window; windows start at UTC midnight for days."
    )
    p_value_threshold = models.FloatField(
        default=0.01, help_text="Alert when the two-sample test's p-value is below this."
    )
    coverage_threshold = models.FloatField(
        default=0.15, help_text="Alert when more of a window than this is out of coverage."
    )
    cluster_shift_threshold = models.FloatField(
        default=0.10, help_text="Alert when a cluster's share changes by more than this."
    )
    label_shift_threshold = models.FloatField(
        default=0.15,
        help_text="Alert when a class's estimated share changes by this much (significantly).",
    )
    new_kind_threshold = models.FloatField(
        default=0.10,
        help_text="Alert when this much of a window's traffic belongs to no training class.",
    )
    min_samples = models.PositiveIntegerField(
        default=30, help_text="Windows with fewer production samples are not tested."
    )
    embedding_space = models.CharField(
        max_length=80, blank=True, help_text="Embedding space to compare in; blank: the default."
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "quality_monitoringpolicy"  # created by the quality app, before this one
        verbose_name_plural = "monitoring policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(window_hours__gte=1, window_hours__lte=24 * 31),
                name="window_hours_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(p_value_threshold__gt=0, p_value_threshold__lt=1),
                name="p_value_threshold_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(coverage_threshold__gt=0, coverage_threshold__lt=1),
                name="coverage_threshold_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(cluster_shift_threshold__gt=0, cluster_shift_threshold__lt=1),
                name="cluster_shift_threshold_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(label_shift_threshold__gt=0, label_shift_threshold__lt=1),
                name="label_shift_threshold_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(new_kind_threshold__gt=0, new_kind_threshold__lt=1),
                name="new_kind_threshold_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(min_samples__gte=10), name="min_samples_at_least_10"
            ),
        ]

    def __str__(self) -> str:
        return f"monitoring of {self.project_id}: {self.window_hours} h windows"


class DriftCheck(models.Model):
    """One time window of a dataset's production samples checked against training. A window
    is checked once; one with too few samples is kept as skipped (and checked once it has
    enough)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="drift_checks")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    n_production = models.PositiveIntegerField(
        help_text="Production samples of the window with an embedding."
    )
    n_train = models.PositiveIntegerField(default=0, help_text="Training samples compared with.")
    auc = models.FloatField(null=True, blank=True)
    p_value = models.FloatField(null=True, blank=True)
    share_out_of_coverage = models.FloatField(null=True, blank=True)
    max_cluster_shift = models.FloatField(null=True, blank=True)
    clusters = models.JSONField(
        default=list, blank=True, help_text="Clusters with the biggest share changes."
    )
    label_shift_p_value = models.FloatField(null=True, blank=True)
    max_label_shift = models.FloatField(
        null=True, blank=True, help_text="Largest estimated change of a class's share."
    )
    new_kind_share = models.FloatField(
        null=True, blank=True, help_text="Share of the window that belongs to no training class."
    )
    label_shift = models.JSONField(
        default=dict, blank=True, help_text="Label-shift test: p-value, source, every class."
    )
    new_kind = models.JSONField(
        default=dict, blank=True, help_text="New kind of data: share, expected, p-value, examples."
    )
    alert = models.BooleanField(default=False)
    reasons = models.JSONField(
        default=list, blank=True, help_text="Thresholds crossed: signal, value, threshold."
    )
    thresholds = models.JSONField(default=dict, blank=True, help_text="The policy checked with.")
    skipped = models.CharField(max_length=200, blank=True, help_text="Why it was not tested.")
    embedding_space = models.CharField(max_length=80, blank=True)
    scoring_run = models.ForeignKey(
        ScoringRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The scoring run whose clusters the cluster numbers are; empty: the check "
        "grouped training into regions of its own (no scoring run in its embedding space).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "quality_driftcheck"  # created by the quality app, before this one
        ordering = ["dataset", "-window_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "window_start"], name="one_drift_check_per_window"
            )
        ]

    def __str__(self) -> str:
        return f"drift check of {self.dataset_id} at {self.window_start:%Y-%m-%d %H:%M}"
