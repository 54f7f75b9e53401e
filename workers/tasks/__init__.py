"""Thin Celery tasks: ids in, one service call."""

from workers.tasks.datasets import (
    build_embedding_index,
    compute_embeddings,
    purge_uploads,
    recover_imports,
    run_import,
)
from workers.tasks.quality import (
    check_drift,
    finish_run,
    recover_runs,
    score_chunk,
    score_dataset,
)
from workers.tasks.rules import run_after_scoring, run_due, run_rule
from workers.tasks.system import ping
from workers.tasks.webhooks import deliver_webhook, retry_webhooks

__all__ = [
    "build_embedding_index",
    "check_drift",
    "compute_embeddings",
    "deliver_webhook",
    "finish_run",
    "ping",
    "purge_uploads",
    "recover_imports",
    "recover_runs",
    "retry_webhooks",
    "run_after_scoring",
    "run_due",
    "run_import",
    "run_rule",
    "score_chunk",
    "score_dataset",
]
