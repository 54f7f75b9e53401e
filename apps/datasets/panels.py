"""The datasets' part of the project page: the project's datasets, and the form for a new one."""

from __future__ import annotations

from apps.core.panels import panel_register
from apps.datasets.forms import DatasetForm
from apps.datasets.selectors import datasets_with_counts


def project_context(request, context: dict) -> dict:
    return {"datasets": datasets_with_counts(context["project"]), "dataset_form": DatasetForm()}


def register() -> None:
    panel_register(
        "project.datasets",
        template="datasets/panels/project_datasets.html",
        context=project_context,
    )
