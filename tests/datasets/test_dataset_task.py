"""A dataset's task: datasets made before tasks had names migrate to `classification` (and back),
a new dataset takes only a task every area serves, its class names pass that task's rules, and
the dataset page names the task."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.annotations import Task
from apps.datasets import services
from apps.datasets.models import Dataset

BEFORE, AFTER = [("datasets", "0007_sample_sort_indexes")], [("datasets", "0008_dataset_task")]


def test_existing_datasets_become_classification_and_the_migration_reverses(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    project = old.get_model("projects", "Project").objects.create(name="p", slug="p")
    OldDataset = old.get_model("datasets", "Dataset")
    made = OldDataset.objects.create(project=project, name="old", labels=["cat", "dog"])
    assert OldDataset.objects.get(pk=made.pk).task == "single-label classification"

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    assert new.get_model("datasets", "Dataset").objects.get(pk=made.pk).task == "classification"

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    assert OldDataset.objects.get(pk=made.pk).task == "single-label classification"

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert Dataset.objects.get(pk=made.pk).task == Task.CLASSIFICATION


@pytest.mark.django_db
def test_a_new_dataset_is_single_label_classification(team):
    dataset = services.dataset_create(project=team.project, name="d", labels=["cat"], by=None)
    assert dataset.task == Task.CLASSIFICATION
    assert dataset.get_task_display() == "Single-label classification"


@pytest.mark.django_db
@pytest.mark.parametrize("task", [Task.MULTILABEL, Task.DETECTION, "regression"])
def test_a_task_not_every_area_serves_yet_is_refused(team, task):
    with pytest.raises(ValidationError) as refused:
        services.dataset_create(project=team.project, name="d", task=task, by=None)
    assert "task" in refused.value.message_dict
    assert "one of classification" in refused.value.message_dict["task"][0]
    assert not Dataset.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("label", "problem"),
    [("x" * 201, "longer than 200 characters"), ("a\x00b", "NUL")],
)
def test_class_names_the_database_cannot_hold_are_refused_by_name(team, label, problem):
    with pytest.raises(ValidationError) as refused:
        services.dataset_create(project=team.project, name="d", labels=["cat", label], by=None)
    assert problem in refused.value.message_dict["labels"][0]
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_the_dataset_page_names_the_task(team, web_as):
    dataset = services.dataset_create(project=team.project, name="d", labels=["cat"], by=None)
    page = web_as(team.user("owner")).get(f"/datasets/{dataset.pk}/")
    assert page.status_code == 200
    assert "single-label classification · 1 label" in page.content.decode()
