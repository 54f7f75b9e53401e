"""The datasets reacting to the events the other apps record: a project being deleted takes its
datasets with it."""

from __future__ import annotations

from apps.core.events import Event
from apps.datasets.models import Dataset
from apps.datasets.services import dataset_delete


def project_deleting(event: Event) -> None:
    """Delete each of the project's datasets (each deletion audited) in the project deletion's
    transaction, before the project row goes."""
    for dataset in Dataset.objects.filter(project=event.project):
        dataset_delete(dataset=dataset, by=event.actor)
