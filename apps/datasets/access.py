"""Fetch a dataset (or something in it) and authorise, in one call: the project's access rules."""

from __future__ import annotations

from django.http import Http404

from apps.datasets.models import Dataset, ImportJob, Sample, SavedView, Upload
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


def get_saved_view_of_dataset(dataset: Dataset, view_id: int) -> SavedView:
    view = (
        SavedView.objects.select_related("created_by").filter(dataset=dataset, pk=view_id).first()
    )
    if view is None:
        raise Http404("No such saved view.")
    return view
