"""Column roles and generated ids through the API and the dataset page's preview, tried as
every role: the preview keeps the file as an upload of the user's and writes nothing to the
dataset; the import then uses the roles chosen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from apps.datasets.importing.mapping import content_id
from apps.datasets.models import Dataset, ImportJob, Upload
from apps.datasets.services import import_job_run
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.datasets.conftest import snapshot
from tests.projects.test_access_matrix import expected

pytestmark = pytest.mark.django_db(transaction=True)

SHEET = "Beschreibung;Kategorie;Quelle\nPaket kaputt;Versand;web\nAdresse ändern;Konto;app\n"
ROLES = {"Beschreibung": "text", "Kategorie": "label", "Quelle": "metadata"}


@pytest.fixture
def dataset(team) -> Dataset:
    return Dataset.objects.create(project=team.project, name="tickets", labels=[])


@pytest.fixture
def sheet(tmp_path) -> Path:
    path = tmp_path / "tickets.csv"
    path.write_bytes(SHEET.encode("cp1252"))
    return path


# --- API ------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_import_with_columns_and_generated_ids_as_every_role(persona, team, dataset, sheet, api_as):
    with sheet.open("rb") as f:
        response = api_as(team.user(persona)).post(
            f"/api/datasets/{dataset.pk}/imports/",
            {"file": f, "columns": json.dumps(ROLES), "generate_ids": "true"},
            format="multipart",
        )
    assert response.status_code == expected(persona, Cap.EDIT_DATA, 202), response.content
    if response.status_code != 202:
        assert not ImportJob.objects.exists()
        return
    job = import_job_run(job_id=response.json()["id"])
    assert job.status == "done", job.problems
    assert job.options["columns"] == ROLES and job.options["generate_ids"] is True
    assert set(dataset.samples.values_list("external_id", flat=True)) == {
        content_id("Paket kaputt"),
        content_id("Adresse ändern"),
    }


@pytest.mark.parametrize("persona", PERSONAS)
def test_complete_an_upload_with_columns_as_every_role(persona, team, dataset, sheet, api_as):
    data = sheet.read_bytes()
    upload = Upload.objects.create(
        dataset=dataset, created_by=team.user(persona),
        file_name="tickets.csv", size=len(data), received=len(data),
    )  # fmt: skip
    Path(settings.LOUPE_UPLOAD_DIR).mkdir(parents=True, exist_ok=True)
    upload.path.write_bytes(data)
    response = api_as(team.user(persona)).post(
        f"/api/datasets/{dataset.pk}/uploads/{upload.pk}/complete/",
        {"columns": ROLES, "generate_ids": True},
        format="json",
    )
    want = expected(persona, Cap.EDIT_DATA, 202)
    assert response.status_code == want, response.content
    assert ImportJob.objects.filter(dataset=dataset).exists() == (want == 202)


@pytest.mark.parametrize(
    "body,field,words",
    [
        ({"columns": json.dumps({"Kategorie": "colour"})}, "columns", ["'Kategorie'", "colour"]),
        ({"columns": json.dumps({"Nope": "label"})}, "columns", ["'Nope'", "no column"]),
        (
            {"columns": json.dumps({**ROLES, "Quelle": "label"}), "generate_ids": "true"},
            "columns",
            ["'Quelle'", "both mapped to label"],
        ),
        ({"columns": "[1, 2]"}, "columns", ["column name to role"]),
        ({"columns": "{not json"}, "columns", []),
        ({"columns": json.dumps(ROLES)}, "columns", ["generate ids"]),
        ({"generate_ids": "true"}, "columns", ["'Beschreibung'", "map it to a role"]),
        (
            {"generate_ids": "true", "columns": json.dumps({**ROLES, "Kategorie": "id"})},
            "columns",
            ["'Kategorie'", "ids are generated"],
        ),
    ],
)
def test_a_bad_mapping_is_a_400_naming_the_field_and_column(
    body, field, words, team, dataset, sheet, api_as
):
    with sheet.open("rb") as f:
        response = api_as(team.user("owner")).post(
            f"/api/datasets/{dataset.pk}/imports/", {"file": f, **body}, format="multipart"
        )
    assert response.status_code == 400 and field in response.json(), response.content
    message = " ".join(response.json()[field])
    assert all(w in message for w in words), message
    assert not ImportJob.objects.exists()


def test_the_schema_documents_the_mapping(api_as, team):
    answer = api_as(team.user("owner")).get(
        "/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}
    )
    schema = json.loads(answer.content)
    body = schema["components"]["schemas"]["ImportCreateRequest"]["properties"]
    assert body["columns"]["additionalProperties"]["enum"][:3] == ["id", "text", "label"]
    assert body["generate_ids"]["type"] == "boolean"
    complete = schema["components"]["schemas"]["UploadCompleteRequest"]["properties"]
    assert "columns" in complete and "generate_ids" in complete


# --- The page's preview ---------------------------------------------------------------------


def preview(client, dataset, data=None, **fields):
    return client.post(
        f"/datasets/{dataset.pk}/imports/preview/", {**(data or {}), **fields},
        headers={"HX-Request": "true"},
    )  # fmt: skip


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_preview_as_every_role_writes_nothing(persona, team, dataset, sheet, web_as):
    before = snapshot()
    with sheet.open("rb") as f:
        response = preview(web_as(team.user(persona)), dataset, {"file": f})
    assert response.status_code == expected(persona, Cap.EDIT_DATA, 200)
    assert snapshot() == before and not ImportJob.objects.exists()
    if response.status_code != 200:
        assert not Upload.objects.exists()
        return
    page = response.content.decode()
    assert "semicolon-separated · Windows-1252 · 2 rows" in page
    assert "Paket kaputt" in page and "Adresse ändern" in page
    assert "no column is the id" in page and "choose what this column is" in page
    # Kept whole as an upload of this user's, under a name of Loupe's own, not the file's.
    upload = Upload.objects.get()
    assert upload.created_by == team.user(persona) and upload.completed_at is None
    assert upload.path.parent == Path(settings.LOUPE_UPLOAD_DIR)
    assert upload.path.read_bytes() == sheet.read_bytes()


def test_roles_chosen_in_the_preview_are_checked_and_imported(team, dataset, sheet, web_as):
    client = web_as(team.user("scientist"))
    with sheet.open("rb") as f:
        preview(client, dataset, {"file": f})
    upload = Upload.objects.get()
    roles = {"upload": upload.pk, "role_0": "text", "role_1": "label", "role_2": "label"}
    page = preview(client, dataset, roles).content.decode()
    assert "&#x27;Kategorie&#x27; and &#x27;Quelle&#x27; are both mapped to label" in page
    roles["role_2"] = "metadata"
    page = preview(client, dataset, roles).content.decode()
    assert "no column is the id" in page
    page = preview(client, dataset, roles, generate_ids="on").content.decode()
    assert "Before importing" not in page and "Import 2 rows" in page
    # Import refuses while the preview shows a problem, then imports with the roles chosen.
    refused = client.post(
        f"/datasets/{dataset.pk}/", {**roles, "on_duplicate": "reject"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert "no column is the id" in refused.content.decode()
    assert not ImportJob.objects.exists()
    done = client.post(
        f"/datasets/{dataset.pk}/", {**roles, "generate_ids": "on", "on_duplicate": "reject"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert done.status_code == 200 and "Import of tickets.csv queued" in done.content.decode()
    job = ImportJob.objects.get()
    assert job.options["columns"] == {
        "Beschreibung": "text",
        "Kategorie": "label",
        "Quelle": "metadata",
    }
    assert not upload.path.exists()  # moved into the import's storage
    job = import_job_run(job_id=job.pk)
    assert job.status == "done", job.problems
    assert dataset.samples.get(external_id=content_id("Paket kaputt")).metadata == {"Quelle": "web"}


def test_a_file_in_the_conventions_maps_nothing(team, dataset, tmp_path, web_as):
    path = tmp_path / "ok.jsonl"
    path.write_text('{"id": "a", "text": "x", "label": "cat", "meta_n": 1}\n')
    client = web_as(team.user("owner"))
    with path.open("rb") as f:
        page = preview(client, dataset, {"file": f}).content.decode()
    assert "Before importing" not in page
    upload = Upload.objects.get()
    client.post(f"/datasets/{dataset.pk}/", {"upload": upload.pk, "on_duplicate": "reject"})
    job = ImportJob.objects.get()
    assert "columns" not in job.options and "generate_ids" not in job.options


def test_another_file_replaces_the_kept_one_and_others_uploads_are_not_found(
    team, dataset, sheet, tmp_path, web_as
):
    client = web_as(team.user("owner"))
    with sheet.open("rb") as f:
        preview(client, dataset, {"file": f})
    first = Upload.objects.get()
    other = tmp_path / "other.parquet"
    other.write_bytes(b"not parquet")
    with other.open("rb") as f:
        page = preview(client, dataset, {"file": f, "upload": first.pk}).content.decode()
    assert "Not a readable Parquet file" in page
    assert not Upload.objects.exists() and not first.path.exists()
    with sheet.open("rb") as f:
        preview(client, dataset, {"file": f})
    mine = Upload.objects.get()
    stranger = web_as(team.user("manager"))
    assert preview(stranger, dataset, upload=mine.pk).status_code == 404
    assert stranger.post(f"/datasets/{dataset.pk}/", {"upload": mine.pk}).status_code == 404
