"""Datasets and what hangs off them: samples, label history, versions, embeddings, model runs.

Label history and versions are one table: every change to a sample's label or membership
after it was added is a LabelEvent; a draft change has no version yet, and committing a version
stamps the draft's events with its number. A sample's state in version N is its latest event
numbered N or lower, else its first label if it was added in version N or earlier.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import VectorField

from apps.annotations import Task
from apps.projects.models import Project


class Modality(models.TextChoices):
    TEXT = "text", "Text"
    IMAGE = "image", "Image"
    TABULAR = "tabular", "Tabular"


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VALIDATION = "validation", "Validation"
    TEST = "test", "Test"
    PRODUCTION = "production", "Production"
    UNLABELED = "unlabeled", "Unlabeled"


class Dataset(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    modality = models.CharField(max_length=10, choices=Modality.choices, default=Modality.TEXT)
    task = models.CharField(
        max_length=40, choices=Task.choices, default=Task.CLASSIFICATION, editable=False
    )
    labels = ArrayField(
        models.CharField(max_length=200), default=list, help_text="The label schema, in order."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"], name="unique_dataset_name_in_project"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Sample(models.Model):
    # No index of its own: the unique (dataset, external_id) index serves lookups by dataset.
    dataset = models.ForeignKey(
        Dataset, on_delete=models.CASCADE, related_name="samples", db_index=False
    )
    external_id = models.TextField()
    split = models.CharField(max_length=12, choices=Split.choices, default=Split.TRAIN)
    # NULL is "unlabelled", which an empty string would blur.
    label = models.TextField(  # noqa: DJ001
        null=True, blank=True, help_text="The label in the newest committed version."
    )
    # The state a sample was added with; later changes are LabelEvents.
    first_label = models.TextField(null=True, blank=True)  # noqa: DJ001 - NULL is "unlabelled"
    added_in = models.PositiveIntegerField(default=1, help_text="Version the sample was added in.")
    text = models.TextField(blank=True, default="")
    image = models.TextField(
        blank=True, default="", help_text="Path of the image inside the dataset's media."
    )
    fields = models.JSONField(null=True, blank=True, help_text="Tabular features.")
    metadata = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True, help_text="Part of the newest committed version.")
    created_at = models.DateTimeField(auto_now_add=True)
    observed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a production sample was seen (monitoring)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "external_id"], name="unique_sample_external_id"
            ),
        ]
        indexes = [
            models.Index(fields=["dataset", "split", "label"], name="sample_split_label"),
            # The sample table sorted by label or split: a page walks one of these in order,
            # either way (those without a label are read apart; see explorer.sample_page).
            models.Index(fields=["dataset", "label", "id"], name="sample_label_order"),
            models.Index(fields=["dataset", "split", "id"], name="sample_split_order"),
            # Drift checks read a dataset's production samples one time window at a time.
            models.Index(
                fields=["dataset", "observed_at"],
                name="sample_production_observed",
                condition=models.Q(split="production"),
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class DatasetVersion(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    message = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    stats = models.JSONField(default=dict, help_text="samples, added, removed, relabelled")

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="unique_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.dataset} v{self.number}"


class LabelSource(models.TextChoices):
    IMPORT = "import", "Import"
    MANUAL = "manual", "Manual edit"
    REVIEW = "review", "Review decision"
    VENDOR = "vendor", "Vendor"


class LabelEvent(models.Model):
    """One change to a sample's label or membership: its history, and the stuff of versions."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="history")
    version = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty while in the draft."
    )
    label = models.TextField(null=True, blank=True)  # noqa: DJ001 - NULL is "unlabelled"
    removed = models.BooleanField(default=False)
    source = models.CharField(max_length=10, choices=LabelSource.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["dataset", "version"], name="labelevent_version"),
            models.Index(fields=["sample", "version"], name="labelevent_sample"),
        ]

    def __str__(self) -> str:
        return f"{self.sample_id}: {'removed' if self.removed else self.label} (v{self.version or ' draft'})"


class EmbeddingSpace(models.Model):
    """A named vector space of a dataset (the user's model, or one Loupe computed)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="embedding_spaces")
    name = models.CharField(max_length=80)
    dimension = models.PositiveIntegerField()
    method = models.CharField(
        max_length=80, default="provided", help_text="provided, tfidf-svd, minilm, …"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    index_built_at = models.DateTimeField(null=True, blank=True)
    index_build_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="unique_embedding_space")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.dimension}-d)"

    @property
    def index_name(self) -> str:
        return f"embedding_hnsw_space_{self.pk}"


# Embeddings and predictions are the big tables (a row per sample per space or run). Their
# foreign keys are not database constraints: checking a million of them at commit doubled an
# import's time. Samples are never deleted on their own (removal is a version change), and
# deleting a dataset deletes these rows first (services.dataset_delete). The primary keys
# (space or run first) serve every lookup, so no other index is kept.
BIG_TABLE_FK = {
    "on_delete": models.DO_NOTHING,
    "db_constraint": False,
    "db_index": False,
    "related_name": "+",
}


class Embedding(models.Model):
    # One column for every space; each space gets its own partial HNSW index on
    # (vector::vector(dimension)), which is how pgvector indexes mixed dimensions.
    pk = models.CompositePrimaryKey("space_id", "sample_id")
    space = models.ForeignKey(EmbeddingSpace, **BIG_TABLE_FK)
    sample = models.ForeignKey(Sample, **BIG_TABLE_FK)
    vector = VectorField()

    def __str__(self) -> str:
        return f"sample {self.sample_id} in space {self.space_id}"


class ModelRun(models.Model):
    """A model's class probabilities per sample (out of sample), optionally per epoch."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="model_runs")
    version = models.ForeignKey(
        DatasetVersion, on_delete=models.SET_NULL, null=True, related_name="model_runs"
    )
    name = models.CharField(max_length=120)
    classes = ArrayField(models.CharField(max_length=200), help_text="Order of the probabilities.")
    epochs = models.PositiveIntegerField(
        default=0, help_text="How many per-epoch probability sets it has."
    )
    metrics = models.JSONField(
        default=dict, blank=True, help_text="e.g. {'test': {'accuracy': 0.91}}"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Prediction(models.Model):
    """Probabilities of one sample in one model run; epoch 0 is the final, out-of-sample one."""

    pk = models.CompositePrimaryKey("run_id", "sample_id", "epoch")
    run = models.ForeignKey(ModelRun, **BIG_TABLE_FK)
    sample = models.ForeignKey(Sample, **BIG_TABLE_FK)
    epoch = models.PositiveSmallIntegerField(default=0)
    probs = VectorField()

    def __str__(self) -> str:
        return f"run {self.run_id}, sample {self.sample_id}, epoch {self.epoch}"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One import of a file into a dataset; its state lives here, not in the broker."""

    class Kind(models.TextChoices):
        SAMPLES = "samples", "Samples"
        MODEL_RUN = "model_run", "Model run"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="imports")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SAMPLES)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    file = models.CharField(max_length=500, help_text="Path of the uploaded file in media storage.")
    file_name = models.CharField(max_length=255)
    format = models.CharField(max_length=10)
    options = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    stage = models.CharField(max_length=40, blank=True)
    rows_done = models.PositiveBigIntegerField(default=0)
    progress = models.FloatField(default=0.0, help_text="0 to 1")
    problems = models.JSONField(default=list, blank=True)
    problem_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"import of {self.file_name} into {self.dataset}"

    @property
    def percent(self) -> int:
        if self.status == JobStatus.DONE:
            return 100
        return min(99, int(100 * self.progress))


class Upload(models.Model):
    """A file sent in chunks (the Python client's way), assembled before it is imported."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    file_name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    received = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"upload {self.pk} of {self.file_name}"

    @property
    def path(self) -> Path:
        """Where its bytes are kept until it is completed: a name of Loupe's own, not the file's."""
        return Path(settings.LOUPE_UPLOAD_DIR) / f"{self.pk}.part"


class Tag(models.Model):
    """A name people put on samples to find them again (`{"field": "tags", ...}` in queries)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=80)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["dataset", "name"], name="unique_tag_name")]

    def __str__(self) -> str:
        return self.name


class SampleTag(models.Model):
    # Tag first: "samples with tag T" is the query's lookup; the second index serves a sample's tags.
    pk = models.CompositePrimaryKey("tag_id", "sample_id")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="+", db_index=False)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["sample"], name="sampletag_sample")]

    def __str__(self) -> str:
        return f"{self.tag_id} on {self.sample_id}"


class SortIndex(models.Model):
    """An index that sorts one large dataset's samples by one metadata key, built in the
    background the first time the table is sorted by it (services.sort_index_request): a partial
    index on (the key's value, id) WHERE dataset_id = …, the order and the cursor the table's
    keyset pages use. A few per dataset and a few in all (settings), for keys its samples have;
    dropped with the dataset. Without it the table sorts the same, reading every match."""

    class State(models.TextChoices):
        BUILDING = "building"
        READY = "ready"
        FAILED = "failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="sort_indexes")
    key = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.BUILDING)
    created_at = models.DateTimeField(auto_now_add=True)
    build_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "key"], name="unique_sort_index_key")
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} by metadata.{self.key}"

    @property
    def index_name(self) -> str:
        return f"sample_sort_{self.dataset_id}_{self.pk}"
