"""Dataset jobs: ids in, one service call."""

from celery import shared_task

from apps.core.tasks import task_enqueue
from apps.datasets import services


@shared_task(name="loupe.datasets.run_import", acks_late=True)
def run_import(job_id: int) -> None:
    services.import_job_run(job_id=job_id)


@shared_task(name="loupe.datasets.build_embedding_index", acks_late=True)
def build_embedding_index(space_id: int) -> None:
    services.embedding_index_build(space_id=space_id)


@shared_task(name="loupe.datasets.build_sort_index", acks_late=True)
def build_sort_index(index_id: int) -> None:
    services.sort_index_build(index_id=index_id)


@shared_task(name="loupe.datasets.compute_embeddings", acks_late=True, time_limit=6 * 3600)
def compute_embeddings(dataset_id: int) -> None:
    space = services.embeddings_compute(dataset_id=dataset_id)
    if space is not None:
        task_enqueue("loupe.datasets.build_embedding_index", space.pk)


@shared_task(name="loupe.datasets.recover_imports")
def recover_imports() -> None:
    services.import_jobs_recover()


@shared_task(name="loupe.datasets.purge_uploads")
def purge_uploads() -> None:
    services.uploads_purge()
