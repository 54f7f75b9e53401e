"""Thin Celery tasks: ids in, one service call."""

from workers.tasks.datasets import (
    build_embedding_index,
    compute_embeddings,
    recover_imports,
    run_import,
)
from workers.tasks.quality import recover_runs, score_dataset
from workers.tasks.system import ping

__all__ = [
    "build_embedding_index",
    "compute_embeddings",
    "ping",
    "recover_imports",
    "recover_runs",
    "run_import",
    "score_dataset",
]
