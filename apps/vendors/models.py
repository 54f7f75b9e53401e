"""Labelling vendors: who they are, the relabel batches sent to them, their labels, QA and cost."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.datasets.models import Dataset, Sample
from apps.projects.models import Project


class Vendor(models.Model):
    """An annotation company, as one tenant knows it: made in its home project and linked to
    other projects only by someone who manages vendors in both. Its annotators hold the
    `vendor` role in the projects they work for and belong to this vendor only."""

    # Null only once the home project is deleted: the links it made keep working, and nobody
    # can share the vendor further.
    home_project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, related_name="home_vendors"
    )
    name = models.CharField(max_length=120)
    contact = models.CharField(max_length=200, blank=True)
    price_per_item = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    currency = models.CharField(max_length=3, default="USD")
    turnaround_days = models.PositiveSmallIntegerField(default=7, help_text="Target, in days.")
    projects = models.ManyToManyField(Project, related_name="vendors", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["home_project", "name"], name="vendor_name_once_per_home"
            )
        ]

    def __str__(self) -> str:
        return self.name


class VendorMember(models.Model):
    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="members")
    # One vendor per annotator: the unique user is the rule, in the database.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vendor_membership"
    )

    def __str__(self) -> str:
        return f"{self.user} of {self.vendor}"


class Batch(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        IN_PROGRESS = "in_progress", "In progress"
        SUBMITTED = "submitted", "Submitted"
        IN_QA = "in_qa", "In QA"
        RETURNED = "returned", "Returned for rework"
        ACCEPTED = "accepted", "Accepted"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="batches")
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="batches")
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Markdown.")
    query = models.JSONField(default=dict, blank=True)
    price_per_item = models.DecimalField(max_digits=10, decimal_places=4)
    currency = models.CharField(max_length=3)
    due_date = models.DateField(null=True, blank=True)
    labels_per_item = models.PositiveSmallIntegerField(default=1)
    gold_share = models.FloatField(default=0.0)
    priority = models.PositiveSmallIntegerField(default=2, help_text="1 high, 2 normal, 3 low.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    rework_notes = models.TextField(blank=True)
    rounds = models.PositiveSmallIntegerField(default=0, help_text="Times returned for rework.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(null=True, blank=True)
    acceptance = models.JSONField(
        default=dict, blank=True, help_text="The accuracy check and the changes when accepted."
    )
    override_reason = models.TextField(
        blank=True, help_text="Why it was accepted below the project's acceptance level."
    )

    class Meta:
        ordering = ["priority", "-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(labels_per_item__gte=1, labels_per_item__lte=5),
                name="one_to_five_labels",
            ),
            models.CheckConstraint(
                condition=Q(gold_share__gte=0, gold_share__lte=0.5), name="gold_share_range"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class AcceptancePolicy(models.Model):
    """How sure a project must be of a batch's accuracy to accept it without an override."""

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="batch_acceptance"
    )
    level = models.FloatField(
        default=0.8,
        help_text="The lowest accuracy the 95 % Wilson interval's lower bound may show, 0 to 1.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(level__gte=0, level__lte=1), name="acceptance_level_range"
            )
        ]

    def __str__(self) -> str:
        return f"accept at {self.level:.0%}"


class BatchItem(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "To label"
        DONE = "done", "Labelled"
        ACCEPTED = "accepted", "Accepted"
        RETURNED = "returned", "Returned"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    gold_label = models.TextField(null=True, blank=True)  # noqa: DJ001 - set for gold items
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    qa_note = models.TextField(blank=True)
    qa_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "sample"], name="sample_once_per_batch"),
            models.UniqueConstraint(fields=["batch", "position"], name="one_item_per_slot"),
        ]

    def __str__(self) -> str:
        return f"item {self.position} of batch {self.batch_id}"

    @property
    def is_gold(self) -> bool:
        return self.gold_label is not None


class VendorLabel(models.Model):
    """One annotator's label (or skip, with the reason) of one item."""

    item = models.ForeignKey(BatchItem, on_delete=models.CASCADE, related_name="labels")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    label = models.TextField(null=True, blank=True)  # noqa: DJ001 - NULL when skipped
    skip_reason = models.TextField(blank=True)
    source = models.CharField(
        max_length=20, default="workspace", help_text="workspace, label-studio, csv"
    )
    external_annotator = models.CharField(
        max_length=200, blank=True, help_text="Who labelled it in the vendor's own tool."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "annotator", "external_annotator"],
                name="one_label_per_annotator",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=Q(label__isnull=False) | ~Q(skip_reason=""),
                name="a_label_or_a_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.label or f"skipped: {self.skip_reason}"


class CostEntry(models.Model):
    """An accepted item's price, booked to its vendor and month."""

    item = models.OneToOneField(BatchItem, on_delete=models.CASCADE, related_name="cost")
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="costs")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    amount = models.DecimalField(max_digits=12, decimal_places=4)
    currency = models.CharField(max_length=3)
    month = models.DateField(help_text="First day of the month it was accepted in.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["vendor", "month"], name="cost_vendor_month")]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
