"""Reading scoring results: the run a page shows, and production monitoring's summaries."""

from __future__ import annotations

from apps.datasets.models import Dataset, EmbeddingSpace
from apps.quality.models import RunStatus, SampleScore, ScoringRun


def latest_done_run(dataset: Dataset) -> ScoringRun | None:
    """The newest finished run: what pages, exports and filters show by default."""
    return dataset.scoring_runs.filter(status=RunStatus.DONE).first()


def scoring_space(dataset: Dataset) -> EmbeddingSpace | None:
    """The embedding space a scoring run reads (the dataset's first): its clusters, map and
    neighbours are of this space, and drift uses the run's clusters only when it monitors it."""
    return dataset.embedding_spaces.order_by("id").first()


def scored_clusters(run: ScoringRun, sample_ids) -> dict[int, int]:
    """The cluster the run gave each of these samples (those it scored with a cluster)."""
    rows = (
        SampleScore.objects.filter(run=run, sample_id__in=list(sample_ids), cluster__isnull=False)
        .values_list("sample_id", "cluster")
        .iterator(chunk_size=5000)
    )
    return {sample_id: cluster for sample_id, cluster in rows if cluster is not None}


def stale_scores(dataset: Dataset, run: ScoringRun | None) -> dict | None:
    """When versions newer than the run's were committed: the version scored, the newest, what
    changed since (relabelled, added, removed, summed over those versions) and the run under
    way, if any, that will bring the scores up to date. None when the scores are current."""
    if run is None:
        return None
    newer = list(
        dataset.versions.filter(number__gt=run.version).order_by("number").values("number", "stats")
    )
    if not newer:
        return None
    changed = {
        key: sum(int((v["stats"] or {}).get(key) or 0) for v in newer)
        for key in ("relabelled", "added", "removed")
    }
    under_way = dataset.scoring_runs.filter(
        status__in=(RunStatus.QUEUED, RunStatus.RUNNING), version__gt=run.version
    ).first()
    return {
        "scored_version": run.version,
        "newest_version": newer[-1]["number"],
        **changed,
        "under_way": under_way,
    }
