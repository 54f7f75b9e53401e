"""The datasets API, tried as every role: only members see datasets, vendors see none at all."""

from __future__ import annotations

import json

import pytest

from apps.datasets.models import Dataset, ImportJob, LabelEvent, Sample
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.datasets.conftest import RECORDS, import_into, write_file
from tests.projects.test_access_matrix import expected

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dataset(team, tmp_path) -> Dataset:
    path = write_file(tmp_path / "d.jsonl", RECORDS, "jsonl")
    return import_into(team, path)


def sample_id(external_id: str) -> int:
    return Sample.objects.get(external_id=external_id).pk


READS = [
    ("get", "/api/projects/{project}/datasets/", None),
    ("get", "/api/datasets/{dataset}/", None),
    ("get", "/api/datasets/{dataset}/samples/", None),
    ("get", "/api/datasets/{dataset}/samples/{sample}/", None),
    ("get", "/api/datasets/{dataset}/versions/", None),
    ("get", "/api/datasets/{dataset}/versions/diff/?from=1&to=1", None),
    ("get", "/api/datasets/{dataset}/draft/", None),
    ("get", "/api/datasets/{dataset}/imports/", None),
    ("get", "/api/datasets/{dataset}/model-runs/", None),
]
WRITES = [
    (
        "post",
        "/api/projects/{project}/datasets/",
        {"name": "new", "modality": "text"},
        Cap.EDIT_DATA,
        201,
    ),
    (
        "post",
        "/api/datasets/{dataset}/uploads/",
        {"file_name": "x.csv", "size": 10},
        Cap.EDIT_DATA,
        201,
    ),
    ("get", "/api/datasets/{dataset}/export/?format=jsonl", None, Cap.EDIT_DATA, 200),
    (
        "post",
        "/api/datasets/{dataset}/samples/{sample}/relabel/",
        {"label": "dog", "reason": "r"},
        Cap.CURATE,
        201,
    ),
    (
        "post",
        "/api/datasets/{dataset}/samples/{sample}/remove/",
        {"reason": "junk"},
        Cap.CURATE,
        201,
    ),
    ("delete", "/api/datasets/{dataset}/draft/", None, Cap.CURATE, 204),
    ("delete", "/api/datasets/{dataset}/", None, Cap.MANAGE_MEMBERS, 204),
]


def url(template: str, team, dataset) -> str:
    return template.format(project=team.project.pk, dataset=dataset.pk, sample=sample_id("r1"))


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body", READS)
def test_reads(persona, method, template, body, team, dataset, api_as):
    response = getattr(api_as(team.user(persona)), method)(url(template, team, dataset))
    assert response.status_code == expected(persona, Cap.VIEW, 200), response.content


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body,cap,ok", WRITES)
def test_writes(persona, method, template, body, cap, ok, team, dataset, api_as):
    response = getattr(api_as(team.user(persona)), method)(
        url(template, team, dataset), body, format="json"
    )
    assert response.status_code == expected(persona, cap, ok), response.content


@pytest.mark.parametrize("persona", PERSONAS)
def test_import_by_upload(persona, team, dataset, api_as, tmp_path):
    path = write_file(
        tmp_path / "more.csv", [{"id": "n1", "text": "new one", "label": "cat"}], "csv"
    )
    with path.open("rb") as f:
        response = api_as(team.user(persona)).post(
            f"/api/datasets/{dataset.pk}/imports/", {"file": f}, format="multipart"
        )
    assert response.status_code == expected(persona, Cap.EDIT_DATA, 202), response.content
    assert ImportJob.objects.filter(dataset=dataset, file_name="more.csv").exists() == (
        response.status_code == 202
    )


def test_vendor_sees_no_dataset_anywhere(team, dataset, api_as):
    client = api_as(team.user("vendor"))
    assert client.get(f"/api/projects/{team.project.pk}/datasets/").status_code == 404
    assert client.get(f"/api/datasets/{dataset.pk}/samples/").status_code == 404
    assert client.get(f"/api/datasets/{dataset.pk}/export/").status_code == 404


def test_sample_filters_and_keyset_pages(team, dataset, api_as):
    client = api_as(team.user("viewer"))
    base = f"/api/datasets/{dataset.pk}/samples/"
    ids = lambda r: [s["external_id"] for s in r.json()["results"]]  # noqa: E731
    assert ids(client.get(base + "?split=test")) == ["r2"]
    assert ids(client.get(base + "?label=none")) == ["r3"]
    assert ids(client.get(base + "?label=cat")) == ["r1"]
    assert ids(client.get(base + "?search=DOG")) == ["r2"]
    assert ids(client.get(base + "?meta.source=web")) == ["r1"]
    assert ids(client.get(base + "?meta.n=3")) == ["r1"]
    assert ids(client.get(base + "?meta=source%3Dbook")) == ["r2"]
    # No lookups via keys: "source__regex" is a key of its own, which no sample has.
    assert ids(client.get(base + "?meta.source__regex=.*")) == []
    first = client.get(base + "?page_size=2").json()
    second = client.get(first["next"]).json()
    assert [s["external_id"] for s in first["results"] + second["results"]] == ["r1", "r2", "r3"]


def test_relabel_commit_diff_export(team, dataset, api_as):
    client = api_as(team.user("scientist"))
    base = f"/api/datasets/{dataset.pk}"
    r1, r2 = sample_id("r1"), sample_id("r2")
    assert (
        client.post(
            f"{base}/samples/{r1}/relabel/",
            {"label": "dog", "reason": "whiskers are a dog's"},
            format="json",
        ).status_code
        == 201
    )
    assert (
        client.post(
            f"{base}/samples/{r2}/remove/", {"reason": "not an animal"}, format="json"
        ).status_code
        == 201
    )
    bad = client.post(f"{base}/samples/{r1}/relabel/", {"label": "giraffe"}, format="json")
    assert bad.status_code == 400 and "Unknown label 'giraffe'" in bad.json()["label"][0]
    assert len(client.get(f"{base}/draft/").json()["results"]) == 2
    empty = client.post(f"{base}/versions/", {"message": ""}, format="json")
    assert empty.status_code == 400 and "message" in empty.json()
    commit = client.post(f"{base}/versions/", {"message": "Fix two"}, format="json")
    assert commit.status_code == 201 and commit.json()["number"] == 2
    assert (
        commit.json()["stats"] | {"samples": 2, "removed": 1, "relabelled": 1}
        == commit.json()["stats"]
    )
    assert (
        client.post(f"{base}/versions/", {"message": "again"}, format="json").status_code == 400
    )  # empty draft

    diff = client.get(f"{base}/versions/diff/?from=1&to=2").json()
    assert diff["counts"] == {"added": 0, "removed": 1, "relabelled": 1}
    relabel = next(c for c in diff["changes"] if c["change"] == "relabelled")
    assert (
        relabel["external_id"],
        relabel["from"],
        relabel["to"],
        relabel["by"],
        relabel["reason"],
    ) == ("r1", "cat", "dog", "scientist1", "whiskers are a dog's")
    v1 = client.get(f"{base}/export/?format=jsonl&version=1")
    v2 = client.get(f"{base}/export/?format=jsonl")

    def rows(response) -> dict:
        lines = b"".join(response.streaming_content).splitlines()
        return {json.loads(x)["id"]: json.loads(x)["label"] for x in lines}

    assert rows(v1) == {"r1": "cat", "r2": "dog", "r3": None}
    assert rows(v2) == {"r1": "dog", "r3": None}
    assert "animals-v2.jsonl" in v2["Content-Disposition"]
    history = client.get(f"{base}/samples/{r1}/").json()["history"]
    assert [(h["version"], h["label"], h["by"]) for h in history] == [(2, "dog", "scientist1")]
    assert LabelEvent.objects.filter(version=None).count() == 0


def test_bad_version_and_format_parameters(team, dataset, api_as):
    client = api_as(team.user("owner"))
    assert "from" in client.get(f"/api/datasets/{dataset.pk}/versions/diff/?from=9&to=1").json()
    assert "format" in client.get(f"/api/datasets/{dataset.pk}/export/?format=xlsx").json()


def test_chunked_upload_resumes_and_imports(team, dataset, api_as, tmp_path):
    client = api_as(team.user("scientist"))
    data = write_file(
        tmp_path / "c.jsonl",
        [{"id": f"c{i}", "text": f"t {i}", "label": "cat"} for i in range(50)],
        "jsonl",
    ).read_bytes()
    upload = client.post(
        f"/api/datasets/{dataset.pk}/uploads/",
        {"file_name": "c.jsonl", "size": len(data)},
        format="json",
    ).json()
    chunk_url = f"/api/datasets/{dataset.pk}/uploads/{upload['id']}/"

    def put(start, end):
        return client.put(
            chunk_url,
            data[start:end],
            content_type="application/octet-stream",
            headers={"Content-Range": f"bytes {start}-{end - 1}/{len(data)}"},
        )

    half = len(data) // 2
    assert put(0, half).json()["received"] == half
    assert put(0, half).json()["received"] == half  # a retried chunk is harmless
    gap = put(half + 10, len(data))
    assert gap.status_code == 409 and gap.json()["received"] == half
    early = client.post(f"{chunk_url}complete/", {}, format="json")
    assert early.status_code == 400 and "Received" in early.json()["upload"][0]
    assert put(half, len(data)).json()["received"] == len(data)
    job = client.post(f"{chunk_url}complete/", {}, format="json")
    assert job.status_code == 202 and job.json()["status"] == "queued"
    # Another user cannot touch this upload.
    other = api_as(team.user("manager"))
    assert other.get(chunk_url).status_code == 404
