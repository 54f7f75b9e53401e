"""Scoring runs on real Celery workers: chunks shared between workers, and a worker killed
mid-run (SIGKILL: the filesystem broker loses its message) leaves a run that is resumed."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from apps.quality.models import RunStatus, SampleScore, ScoringChunk, ScoringRun
from apps.quality.services import scoring_run_execute, scoring_run_start, scoring_runs_recover
from tests.datasets.conftest import import_into
from tests.quality.test_scoring_runs import blobs

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK_ROWS = 50


def wait_for(predicate, timeout: float = 180.0, describe=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out: {describe()}")


def describe(run: ScoringRun) -> str:
    """Where a run stands, for a timed-out wait."""
    state = ScoringRun.objects.filter(pk=run.pk).values("status", "stage", "attempts").first()
    chunks = ScoringChunk.objects.filter(run=run).exclude(status="done")
    return f"{state}; not done: {list(chunks.values('stage', 'index', 'status', 'attempts'))}"


def outcome(run: ScoringRun) -> dict:
    rows = SampleScore.objects.filter(run=run).order_by("sample_id")
    return {
        s.sample_id: (
            s.likely_mislabeled,
            s.suggested_label,
            s.duplicate_group,
            s.cluster,
            round(s.outlier_score, 6),
            round(s.mislabel_score, 6),
            sorted(s.flags),
        )
        for s in rows
    }


def assert_same_outcome(workers: dict, inline: dict) -> None:
    """Flags, suggestions, groups and clusters are the same; the scores agree to a rank or two.

    The workers' thread pools are sized to one thread and this process's are not, so sums of
    floats may differ in their last bits and two near-equal scores swap places: a percentile
    score may move by a rank (1/2000 here).
    """
    assert workers.keys() == inline.keys()
    same, close = (0, 1, 2, 3, 6), (4, 5)
    for sample, got in workers.items():
        assert [got[i] for i in same] == [inline[sample][i] for i in same], sample
        assert [got[i] for i in close] == pytest.approx(
            [inline[sample][i] for i in close], abs=2e-3
        ), sample


def inline_outcome(dataset) -> dict:
    run = scoring_run_execute(run_id=scoring_run_start(dataset=dataset, by=None, enqueue=False).pk)
    assert run.status == RunStatus.DONE, run.error
    return outcome(run)


def test_two_workers_share_a_runs_chunks(team, tmp_path, celery_workers, settings):
    settings.LOUPE_SCORING_CHUNK_ROWS = CHUNK_ROWS
    dataset = import_into(team, blobs(tmp_path, n=600, flips=(3, 40, 77, 310)))
    celery_workers(2, LOUPE_SCORING_CHUNK_ROWS=str(CHUNK_ROWS))
    run = scoring_run_start(dataset=dataset, by=None)
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).status in ("done", "failed"),
        describe=lambda: describe(run),
    )
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    chunks = ScoringChunk.objects.filter(run=run)
    # 600 rows in blocks of 50, and one chunk per cross-validation fold.
    assert chunks.filter(stage="neighbours").count() == 12
    assert chunks.filter(stage="probabilities").count() == 5
    assert not chunks.exclude(status="done").exists()
    assert len(set(chunks.values_list("worker", flat=True))) == 2
    assert run.timings["workers"] == 2
    assert SampleScore.objects.filter(run=run).count() == 600
    # The same scores as one process computing everything.
    assert_same_outcome(outcome(run), inline_outcome(dataset))


def test_a_worker_killed_mid_run_is_resumed_without_redoing_done_chunks(
    team, tmp_path, celery_workers, settings
):
    settings.LOUPE_SCORING_CHUNK_ROWS = CHUNK_ROWS
    dataset = import_into(team, blobs(tmp_path, n=2000, flips=(3, 40, 77, 310)))
    (worker,) = celery_workers(1, LOUPE_SCORING_CHUNK_ROWS=str(CHUNK_ROWS))
    run = scoring_run_start(dataset=dataset, by=None)
    chunks = ScoringChunk.objects.filter(run=run)
    wait_for(
        lambda: chunks.filter(status="done").count() >= 3 and chunks.filter(status="running"),
        timeout=120,
    )
    # The worker and its pool process die at once, as on a lost machine.
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait()
    in_flight = set(chunks.filter(status="running").values_list("pk", flat=True))
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    done_before = set(
        ScoringChunk.objects.filter(run=run, status="done").values_list("pk", flat=True)
    )
    assert 3 <= len(done_before) < ScoringChunk.objects.filter(run=run).count()

    # Ten minutes later nothing has beaten: the sweep finds the run stalled and queues it again.
    long_ago = timezone.now() - timedelta(minutes=30)
    ScoringRun.objects.filter(pk=run.pk).update(heartbeat_at=long_ago)
    ScoringChunk.objects.filter(run=run, status="running").update(heartbeat_at=long_ago)
    recovered = scoring_runs_recover()
    assert recovered == {"failed": 0, "resumed": 1, "chunks_resumed": len(in_flight)}
    celery_workers(1, LOUPE_SCORING_CHUNK_ROWS=str(CHUNK_ROWS))
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).status in ("done", "failed"),
        describe=lambda: describe(run),
    )
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    if in_flight:  # its message went with the worker: only the sweep could queue it again
        assert set(chunks.filter(pk__in=in_flight).values_list("attempts", flat=True)) == {2}
    # Chunks done before the kill were kept, not computed again.
    assert set(chunks.filter(pk__in=done_before).values_list("attempts", flat=True)) == {1}
    assert not chunks.exclude(status="done").exists()
    # One row per sample (nothing duplicated), and the same scores as an uninterrupted run.
    assert SampleScore.objects.filter(run=run).count() == 2000
    assert_same_outcome(outcome(run), inline_outcome(dataset))
    assert np.isfinite([v[4] for v in outcome(run).values()]).all()
