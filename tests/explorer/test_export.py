"""Exporting the sample table: its query, ordering and columns as CSV or Parquet, streamed a
batch at a time, tried as every role."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest

from apps.audit.models import AuditEvent
from apps.explorer import exporting
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.explorer.test_explorer_api import walk
from tests.projects.test_access_matrix import expected

COLUMNS = (
    "external_id,label,tags,flags,mislabel_score,cluster,likely_mislabeled,metadata.src,metadata.n"
)


def q(query) -> str:
    return quote(json.dumps(query))


def body(response) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 7 rows, so that an export of the 80 samples takes many of them."""
    monkeypatch.setattr(exporting, "BATCH", 7)


def listed(client, dataset, query, ordering) -> list[dict]:
    return walk(
        client,
        f"/api/datasets/{dataset.pk}/samples/?q={q(query)}&ordering={ordering}&page_size=1000",
    )


def test_csv_holds_the_tables_rows_in_its_order_with_its_columns(
    world, team, api_as, small_batches
):
    dataset, _run, rows = world
    client = api_as(team.user("viewer"))
    query = {"field": "split", "op": "!=", "value": "test"}
    response = client.get(
        f"/api/datasets/{dataset.pk}/samples/export/?q={q(query)}&ordering=-mislabel_score"
        f"&columns={COLUMNS}&format=csv"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="q-samples.csv"'
    table = list(csv.DictReader(io.StringIO(body(response).decode())))
    want = listed(client, dataset, query, "-mislabel_score")
    assert len(want) > 14  # more than two batches
    assert [r["external_id"] for r in table] == [r["external_id"] for r in want]
    assert list(table[0]) == COLUMNS.split(",")
    by_id = {r["external_id"]: r for r in rows}
    for line, row in zip(table, want, strict=True):
        source = by_id[row["external_id"]]
        assert line["label"] == (row["label"] or "")
        assert json.loads(line["tags"]) == sorted(source["tags"])
        assert json.loads(line["flags"]) == row["scores"]["flags"]
        assert float(line["mislabel_score"]) == row["scores"]["mislabel_score"]
        assert line["likely_mislabeled"] == str(row["scores"]["likely_mislabeled"])
        src = source["metadata"].get("src")
        assert line["metadata.src"] == (src or "")
        n = source["metadata"].get("n")
        assert line["metadata.n"] == ("" if n is None else str(n))


def test_parquet_holds_the_same_rows_typed_one_row_group_a_batch(
    world, team, api_as, small_batches
):
    dataset, _run, rows = world
    client = api_as(team.user("reviewer"))
    response = client.get(
        f"/api/datasets/{dataset.pk}/samples/export/?ordering=-id&columns={COLUMNS}&format=parquet"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert response["Content-Disposition"] == 'attachment; filename="q-samples.parquet"'
    f = pq.ParquetFile(io.BytesIO(body(response)))
    assert f.metadata.num_rows == len(rows) == 80
    assert f.metadata.num_row_groups == 12  # 80 rows in batches of 7
    table = f.read()
    assert table.column_names == COLUMNS.split(",")
    assert str(table.schema.field("mislabel_score").type) == "double"
    assert str(table.schema.field("cluster").type) == "int64"
    assert str(table.schema.field("tags").type) == "list<element: string>"
    got = table.to_pylist()
    assert [r["external_id"] for r in got] == [r["external_id"] for r in reversed(rows)]
    for line, source in zip(got, reversed(rows), strict=True):
        assert sorted(line["tags"]) == sorted(source["tags"])
        score = source["score"]
        assert line["mislabel_score"] == (score["mislabel_score"] if score else None)
        assert line["flags"] == (score["flags"] if score else [])


def test_default_columns_and_an_empty_export(world, team, api_as):
    dataset, _run, _rows = world
    client = api_as(team.user("viewer"))
    plain = client.get(f"/api/datasets/{dataset.pk}/samples/export/")
    header = body(plain).decode().splitlines()[0]
    assert header == "external_id,split,label,suggested_label,mislabel_score,text"
    nothing = {"field": "external_id", "op": "=", "value": "no such sample"}
    empty = client.get(f"/api/datasets/{dataset.pk}/samples/export/?q={q(nothing)}&format=parquet")
    table = pq.read_table(io.BytesIO(body(empty)))
    assert table.num_rows == 0 and "external_id" in table.column_names


def test_a_saved_view_and_removed_samples_export_as_the_table_lists_them(world, team, api_as):
    from apps.explorer.models import SavedView

    dataset, _run, rows = world
    view = SavedView.objects.create(
        dataset=dataset,
        name="trains",
        query={"field": "split", "op": "=", "value": "train"},
        ordering="-id",
    )
    client = api_as(team.user("viewer"))
    response = client.get(
        f"/api/datasets/{dataset.pk}/samples/export/?view={view.pk}&columns=external_id"
    )
    ids = body(response).decode().split()[1:]
    assert ids == [r["external_id"] for r in reversed(rows) if r["split"] == "train"]
    removed = client.get(
        f"/api/datasets/{dataset.pk}/samples/export/?removed=true&columns=external_id"
    )
    assert body(removed).decode().split() == ["external_id"]


def test_similarity_is_a_column_for_a_similarity_search(world, team, api_as):
    dataset, _run, rows = world
    client = api_as(team.user("viewer"))
    query = {"similar_to": rows[4]["id"], "min_similarity": 0.2}
    response = client.get(
        f"/api/datasets/{dataset.pk}/samples/export/?q={q(query)}&columns=external_id,similarity"
    )
    table = list(csv.DictReader(io.StringIO(body(response).decode())))
    want = listed(client, dataset, query, "-similarity")
    assert [r["external_id"] for r in table] == [r["external_id"] for r in want]
    assert [float(r["similarity"]) for r in table] == pytest.approx([r["similarity"] for r in want])


def test_a_cell_a_spreadsheet_would_run_is_written_inert(world, team, api_as):
    dataset, _run, rows = world
    from apps.datasets.models import Sample

    Sample.objects.filter(pk=rows[0]["id"]).update(text="=HYPERLINK(1)")
    client = api_as(team.user("viewer"))
    response = client.get(f"/api/datasets/{dataset.pk}/samples/export/?columns=text&ordering=id")
    assert body(response).decode().splitlines()[1] == "'=HYPERLINK(1)"


def test_an_export_is_in_the_audit_log(world, team, api_as):
    dataset, _run, _rows = world
    client = api_as(team.user("viewer"))
    body(client.get(f"/api/datasets/{dataset.pk}/samples/export/?format=parquet"))
    entry = AuditEvent.objects.get(action="samples.exported")
    assert entry.detail["format"] == "parquet" and entry.detail["dataset_id"] == dataset.pk


@pytest.mark.parametrize(
    "params,field,words",
    [
        ("columns=external_id,nope", "columns", "unknown column 'nope'"),
        ("columns=metadata.", "columns", "metadata key"),
        ("format=xlsx", "format", "csv or parquet"),
        ("q=%7Bnot%20json", "q", "not valid JSON"),
        ("q=" + quote(json.dumps({"field": "wat", "op": "=", "value": 1})), "q", "unknown field"),
        ("ordering=-similarity", "ordering", "similar_to"),
        ("ordering=text", "ordering", "cannot be sorted by"),
        ("run=999999", "run", "no finished scoring run"),
        ("view=999999", "view", "no saved view"),
    ],
)
def test_bad_requests_name_the_parameter(world, team, api_as, params, field, words):
    dataset, _run, _rows = world
    response = api_as(team.user("viewer")).get(
        f"/api/datasets/{dataset.pk}/samples/export/?{params}"
    )
    assert response.status_code == 400
    assert words in response.json()[field][0]


def test_score_columns_are_empty_without_a_finished_run(team, api_as):
    from apps.datasets.models import Dataset, Sample

    dataset = Dataset.objects.create(project=team.project, name="unscored", labels=["a"])
    Sample.objects.create(dataset=dataset, external_id="x", label="a", text="hello")
    client = api_as(team.user("viewer"))
    response = client.get(f"/api/datasets/{dataset.pk}/samples/export/?columns=external_id,margin")
    assert body(response).decode().splitlines() == ["external_id,margin", "x,"]


def test_the_file_name_is_safe(team, api_as):
    from apps.datasets.models import Dataset

    dataset = Dataset.objects.create(project=team.project, name='a "b"/\r\nc é', labels=["a"])
    response = api_as(team.user("viewer")).get(f"/api/datasets/{dataset.pk}/samples/export/")
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"] == 'attachment; filename="a-b-c-samples.csv"'


@pytest.mark.parametrize("persona", PERSONAS)
def test_export_as_every_role(persona, world, team, api_as, api_session_as):
    dataset, _run, _rows = world
    path = f"/api/datasets/{dataset.pk}/samples/export/?format=parquet"
    for client in (api_as(team.user(persona)), api_session_as(team.user(persona))):
        response = client.get(path)
        assert response.status_code == expected(persona, Cap.VIEW, 200)


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_table_offers_the_export_of_what_it_shows(persona, world, team, client):
    dataset, run, _rows = world
    client.force_login(team.user(persona))
    query = {"field": "split", "op": "=", "value": "train"}
    response = client.get(
        f"/datasets/{dataset.pk}/samples/?q={q(query)}&ordering=-margin&columns=external_id,margin"
    )
    assert response.status_code == expected(persona, Cap.VIEW, 200)
    if response.status_code == 200:
        html = response.content.decode()
        link = f"/api/datasets/{dataset.pk}/samples/export/?format=csv&amp;"
        assert link in html
        start = html.index(link)
        href = html[start : html.index('"', start)].replace("&amp;", "&")
        exported = client.get(href)
        assert exported.status_code == 200
        lines = body(exported).decode().splitlines()
        assert lines[0] == "external_id,margin" and len(lines) > 1
