"""Logging a model run for an existing dataset: probabilities per epoch, embeddings, same checks."""

from __future__ import annotations

import numpy as np
import pytest

from apps.datasets import services
from apps.datasets.models import Dataset, Embedding, JobStatus, ModelRun, Prediction
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.datasets.conftest import RECORDS, import_into, snapshot, write_file
from tests.projects.test_access_matrix import expected

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dataset(team, tmp_path) -> Dataset:
    path = write_file(
        tmp_path / "d.jsonl",
        [{k: v for k, v in r.items() if k != "probs"} for r in RECORDS],
        "jsonl",
    )
    return import_into(team, path)


def log_run(dataset, by, path, **run):
    job = services.import_job_create(
        dataset=dataset,
        by=by,
        file_name=path.name,
        fmt=path.suffix[1:],
        path=str(path),
        enqueue=False,
        kind="model_run",
        run=services.model_run_options(**run),
    )
    return services.import_job_run(job_id=job.pk)


def test_per_epoch_probabilities_and_embeddings(team, dataset, tmp_path):
    path = tmp_path / "run.csv"
    lines = ["id,epoch,prob_dog,prob_cat,emb_0,emb_1,emb_2,emb_3"]
    for epoch in range(4):
        for ext in ("r1", "r2"):
            lines.append(f"{ext},{epoch},0.25,0.75,1,0,0,{epoch}")
    path.write_text("\n".join(lines) + "\n")
    job = log_run(
        dataset, team.user("scientist"), path, name="bert-v2", metrics={"test": {"accuracy": 0.91}}
    )
    assert job.status == JobStatus.DONE, job.problems
    run = ModelRun.objects.get(pk=job.result["model_run_id"])
    assert (run.name, run.epochs, run.metrics["test"], run.classes) == (
        "bert-v2",
        3,
        {"accuracy": 0.91},
        ["cat", "dog"],
    )
    # Computed from the final probabilities (cat 0.75) against the labels: r1 is a cat (train),
    # r2 a dog (test).
    assert run.metrics["computed"]["train"] == {"accuracy": 1.0, "macro_f1": 1.0, "n": 1}
    assert run.metrics["computed"]["test"]["accuracy"] == 0.0
    assert run.version.number == 1
    probs = Prediction.objects.filter(run=run)
    assert probs.count() == 8
    assert np.allclose(probs.first().probs, [0.75, 0.25])  # reordered to the schema: cat, dog
    assert (
        Embedding.objects.filter(space_id=job.result["embedding_space_id"]).count() == 3
    )  # replaced, not added


@pytest.mark.parametrize(
    "content,row,column",
    [
        ('id,probs\nnope,"[0.5, 0.5]"\n', 1, "id"),
        ("id,prob_cat,prob_dog\nr1,0.5,0.5\nr1,0.4,0.6\n", 2, "id"),
        ("id,prob_cat,prob_dog,prob_bird\nr1,0.4,0.3,0.3\n", None, "prob_bird"),
        ("id,prob_cat\nr1,1.0\n", None, "prob_*"),
        ("id,prob_cat,prob_dog\nr1,0.9,0.9\n", 1, "prob_*"),
        ("id,epoch,prob_cat,prob_dog\nr1,-1,0.5,0.5\n", 1, "epoch"),
        ("id,text\nr1,hello\n", None, "probs"),
    ],
)
def test_bad_model_run_files_are_refused_and_change_nothing(
    content, row, column, team, dataset, tmp_path
):
    before = snapshot()
    path = tmp_path / "bad.csv"
    path.write_text(content)
    job = log_run(dataset, team.user("owner"), path, name="bad")
    assert job.status == JobStatus.FAILED
    assert any(p["row"] == row and p["column"] == column for p in job.problems), job.problems
    assert snapshot() == before


def test_model_run_needs_a_name_and_object_metrics(team, dataset, api_as, tmp_path):
    path = write_file(tmp_path / "r.csv", [{"id": "r1", "probs": None}], "csv")
    client = api_as(team.user("owner"))
    with path.open("rb") as f:
        response = client.post(
            f"/api/datasets/{dataset.pk}/model-runs/",
            {"file": f, "name": "x", "metrics": "[1]"},
            format="multipart",
        )
    assert response.status_code == 400 and "metrics" in response.json()


@pytest.mark.parametrize("persona", PERSONAS)
def test_log_model_run_through_the_api(persona, team, dataset, api_as, tmp_path):
    path = tmp_path / "run.csv"
    path.write_text("id,prob_cat,prob_dog\nr1,0.9,0.1\n")
    with path.open("rb") as f:
        response = api_as(team.user(persona)).post(
            f"/api/datasets/{dataset.pk}/model-runs/",
            {"file": f, "name": "logreg", "metrics": '{"test": {"accuracy": 0.8}}'},
            format="multipart",
        )
    assert response.status_code == expected(persona, Cap.EDIT_DATA, 202), response.content
    if response.status_code == 202:
        assert (
            response.json()["kind"] == "model_run"
            and response.json()["options"]["name"] == "logreg"
        )
