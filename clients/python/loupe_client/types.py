"""The shapes of the server's answers, as typed dicts: results stay plain dicts at run time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

Progress = Callable[[str, float], None]
"""`progress(stage, fraction)`: told of each stage ("write", "upload", "import", ...) as it goes."""


class Project(TypedDict, total=False):
    id: int
    slug: str
    name: str
    description: str
    created_at: str
    role: str | None


class Dataset(TypedDict, total=False):
    id: int
    project: int
    name: str
    description: str
    modality: str
    labels: list[str]
    created_at: str
    latest_version: int | None
    counts: list[dict[str, Any]]


class ImportResult(TypedDict, total=False):
    dataset_id: int
    imported: int
    updated: int
    version: int
    model_run_id: int | None
    embedding_space_id: int | None


class ImportJob(TypedDict, total=False):
    id: int
    dataset: int
    kind: str
    file_name: str
    format: str
    options: dict[str, Any]
    status: str  # queued, running, done, failed
    stage: str
    rows_done: int
    percent: int
    problems: list[dict[str, Any]]
    problem_count: int
    error: str
    result: ImportResult
    created_at: str
    started_at: str | None
    finished_at: str | None


class ScoringRun(TypedDict, total=False):
    id: int
    dataset: int
    version: int
    model_run: int | None
    status: str  # queued, running, done, failed, cancelled
    stage: str
    percent: int
    attempts: int
    summary: dict[str, Any]
    skipped: list[Any]
    timings: dict[str, Any]
    error: str
    created_at: str
    started_at: str | None
    finished_at: str | None


class Sample(TypedDict, total=False):
    id: int
    external_id: str
    split: str
    label: str | None
    text: str | None
    image: str | None
    fields: dict[str, Any]
    metadata: dict[str, Any]
    active: bool
    added_in: int
    observed_at: str | None
    tags: list[str]
    scores: dict[str, Any] | None
    similarity: float | None  # to a similar_to / similar_text condition of the query


class ProductionTotals(TypedDict):
    appended: int
    embeddings: int
    predictions: int
    batches: int


class Rule(TypedDict, total=False):
    id: int
    dataset: int
    name: str
    query: dict[str, Any]
    ordering: str
    trigger: str  # after_scoring or schedule
    schedule_minutes: int | None
    action: dict[str, Any]
    max_per_run: int
    enabled: bool
    created_by: str | None
    created_at: str
    changed_at: str
    dry_run_at: str | None
    last_run_at: str | None


class DryRun(TypedDict, total=False):
    matched: int
    new: int
    would_act_on: int
    sample_ids: list[int]
    preview: list[dict[str, Any]]


class RuleRun(TypedDict, total=False):
    id: int
    why: str
    scoring_run: int | None
    status: str
    matched: int
    new: int
    acted_on: int
    detail: dict[str, Any]
    error: str
    started_at: str | None
    finished_at: str | None
