"""Thin Celery tasks: ids in, one service call."""

from workers.tasks.datasets import (
    build_embedding_index,
    compute_embeddings,
    recover_imports,
    run_import,
)
from workers.tasks.quality import finish_run, recover_runs, score_chunk, score_dataset
from workers.tasks.system import ping

__all__ = [
    "build_embedding_index",
    "compute_embeddings",
    "finish_run",
    "ping",
    "recover_imports",
    "recover_runs",
    "run_import",
    "score_chunk",
    "score_dataset",
]
