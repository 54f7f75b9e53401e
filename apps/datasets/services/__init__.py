"""Writes for datasets, one module per concern; the names the rest of the code calls, in one place."""

from apps.datasets.services.datasets import dataset_create, dataset_delete
from apps.datasets.services.embeddings import (
    INDEX_BUILD_LOCK,
    embedding_index_build,
    embeddings_compute,
)
from apps.datasets.services.imports import (
    IMPORT_FORMATS,
    STALE_AFTER_MINUTES,
    import_job_create,
    import_job_run,
    import_jobs_recover,
)
from apps.datasets.services.model_runs import model_run_compute_metrics, model_run_options
from apps.datasets.services.queues import queue_append
from apps.datasets.services.sort_indexes import (
    sort_index_build,
    sort_index_request,
    sort_indexes_drop,
)
from apps.datasets.services.uploads import (
    UploadOffsetMismatch,
    upload_append,
    upload_complete,
    upload_create,
    upload_discard,
    upload_stage,
    uploads_purge,
)
from apps.datasets.services.versions import (
    draft_discard,
    sample_relabel,
    sample_remove,
    version_commit,
)

__all__ = [
    "IMPORT_FORMATS",
    "INDEX_BUILD_LOCK",
    "STALE_AFTER_MINUTES",
    "UploadOffsetMismatch",
    "dataset_create",
    "dataset_delete",
    "draft_discard",
    "embedding_index_build",
    "embeddings_compute",
    "import_job_create",
    "import_job_run",
    "import_jobs_recover",
    "model_run_compute_metrics",
    "model_run_options",
    "queue_append",
    "sample_relabel",
    "sample_remove",
    "sort_index_build",
    "sort_index_request",
    "sort_indexes_drop",
    "upload_append",
    "upload_complete",
    "upload_create",
    "upload_discard",
    "upload_stage",
    "uploads_purge",
    "version_commit",
]
