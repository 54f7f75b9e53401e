"""Imports whose worker died, or whose message the broker lost, are settled — never left hanging."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.datasets.models import Dataset, ImportJob, JobStatus
from apps.datasets.services import import_jobs_recover

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(team):
    return Dataset.objects.create(project=team.project, name="d", modality="text")


def job(dataset, **fields) -> ImportJob:
    return ImportJob.objects.create(
        project=dataset.project,
        dataset=dataset,
        file="x.csv",
        file_name="x.csv",
        format="csv",
        **fields,
    )


def test_stalled_and_lost_imports_are_settled(dataset):
    now = timezone.now()
    long_ago = now - timedelta(minutes=30)
    stalled = job(dataset, status=JobStatus.RUNNING, heartbeat_at=long_ago)
    alive = job(dataset, status=JobStatus.RUNNING, heartbeat_at=now)
    lost = job(dataset, status=JobStatus.QUEUED)
    ImportJob.objects.filter(pk=lost.pk).update(created_at=long_ago)
    fresh = job(dataset, status=JobStatus.QUEUED)

    assert import_jobs_recover(now=now) == {"failed": 1, "requeued": 1}
    stalled.refresh_from_db()
    assert (
        stalled.status == JobStatus.FAILED
        and "stopped" in stalled.error
        and stalled.finished_at == now
    )
    for other in (alive, lost, fresh):
        before = other.status
        other.refresh_from_db()
        assert other.status == before
