"""Fetch a dataset (or something in it) and authorise, in one call: the project's access rules."""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404

from apps.datasets.models import Dataset, ImportJob, Sample, Upload
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap


def get_dataset_for_user(user, pk: int, *, need: Cap = Cap.VIEW) -> Dataset:
    """The dataset, if the user's role in its project may `need`; 404 if they may not see it."""
    dataset = Dataset.objects.select_related("project").filter(pk=pk).first()
    if dataset is None:
        raise Http404("No such dataset.")
    # Outsiders and roles that cannot see datasets (vendors) get 404; others lacking `need`, 403.
    get_membership_for_user(user, pk=dataset.project_id, need=need)
    return dataset


def get_sample_of_dataset(dataset: Dataset, sample_id: int) -> Sample:
    sample = Sample.objects.filter(dataset=dataset, pk=sample_id).first()
    if sample is None:
        raise Http404("No such sample.")
    return sample


def get_import_of_dataset(dataset: Dataset, job_id: int) -> ImportJob:
    job = ImportJob.objects.filter(dataset=dataset, pk=job_id).first()
    if job is None:
        raise Http404("No such import.")
    return job


def get_upload_of_dataset(dataset: Dataset, upload_id: int, user) -> Upload:
    upload = Upload.objects.filter(dataset=dataset, pk=upload_id, created_by=user).first()
    if upload is None:
        raise Http404("No such upload.")
    return upload


# Checks that let someone fetch an image of a dataset they may not otherwise see: apps higher up
# add theirs from their AppConfig.ready() (vendors: an annotator, the images of their items).
_media_grants: list[Callable[[object, int, str], bool]] = []


def media_grant_register(check: Callable[[object, int, str], bool]) -> None:
    """Add a check(user, dataset_id, image path) that may grant access to one image."""
    if check not in _media_grants:
        _media_grants.append(check)


def media_granted(user, dataset_id: int, path: str) -> bool:
    return any(check(user, dataset_id, path) for check in _media_grants)
