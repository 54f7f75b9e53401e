"""Values PostgreSQL cannot store (NUL, lone surrogates, metadata nested past the limit, over-long
ids and labels) are refused by row and column like every other import problem, in every format
and in model-run imports, and the database's own message never reaches the user."""

from __future__ import annotations

import json

import pytest

from apps.datasets import services
from apps.datasets.importing.values import MAX_ID_LENGTH, MAX_METADATA_DEPTH
from apps.datasets.models import Dataset, JobStatus
from tests.datasets.conftest import snapshot

pytestmark = pytest.mark.django_db(transaction=True)

INTERNAL = ("import_stage", "run_stage", "datasets_", "psycopg", "DataError", "0x00", "Traceback")


def nested(depth: int) -> dict:
    top = cur = {}
    for _ in range(depth - 1):
        cur["a"] = {}
        cur = cur["a"]
    return top


@pytest.fixture
def dataset(team) -> Dataset:
    return services.dataset_create(
        project=team.project, name="values", modality="text", labels=["cat", "dog"], by=None
    )


def run_import(team, tmp_path, fmt: str, rows: list[dict] | str, *, kind=None):
    dataset = Dataset.objects.get(name="values")
    path = tmp_path / f"rows.{fmt}"
    if isinstance(rows, str):
        path.write_bytes(rows.encode("utf-8", "surrogatepass"))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    job = services.import_job_create(
        dataset=dataset,
        by=team.user("owner"),
        file_name=path.name,
        fmt=fmt,
        path=str(path),
        enqueue=False,
        **(
            {"kind": "model_run", "run": services.model_run_options(name="run")}
            if kind == "model_run"
            else {}
        ),
    )
    return services.import_job_run(job_id=job.pk)


def assert_refused(job, row: int, column: str) -> None:
    assert job.status == JobStatus.FAILED
    assert (row, column) in [(p["row"], p["column"]) for p in job.problems], job.problems
    said = job.error + json.dumps(job.problems)
    assert not any(word in said for word in INTERNAL), said


GOOD = {"id": "ok", "text": "fine", "label": "cat"}
DEEP = '{"a": ' * 4999 + "{}" + "}" * 4999  # json.dumps itself would recurse too deep
PAST_LIMIT = json.dumps(nested(MAX_METADATA_DEPTH + 1))

CSV_CASES = {
    "NUL in text": ("id,text,label\nok,fine,cat\nb,hi\x00there,cat\n", 2, "text"),
    "NUL in id": ("id,text,label\nok,fine,cat\nb\x00,hi,cat\n", 2, "id"),
    "NUL in label": ("id,text,label\nok,fine,cat\nb,hi,c\x00t\n", 2, "label"),
    "NUL in split": ("id,text,label,split\nok,fine,cat,train\nb,hi,cat,te\x00st\n", 2, "split"),
    "NUL in a meta_ column": ("id,text,meta_source\nok,fine,web\nb,hi,w\x00b\n", 2, "meta_source"),
    "NUL in a metadata key": (
        'id,text,metadata\nok,fine,{}\nb,hi,"{""k\\u0000"": 1}"\n',
        2,
        "metadata",
    ),
    "NUL in a metadata value": (
        'id,text,metadata\nok,fine,{}\nb,hi,"{""k"": ""\\u0000""}"\n',
        2,
        "metadata",
    ),
    "metadata thousands deep": (
        'id,text,metadata\nok,fine,{}\nb,hi,"' + DEEP.replace('"', '""') + '"\n',
        2,
        "metadata",
    ),
    "metadata past the depth limit": (
        'id,text,metadata\nok,fine,{}\nb,hi,"' + PAST_LIMIT.replace('"', '""') + '"\n',
        2,
        "metadata",
    ),
    "id too long": (f"id,text\nok,fine\n{'x' * (MAX_ID_LENGTH + 1)},hi\n", 2, "id"),
    "label too long for the schema": (
        f"id,text,label\nok,fine,cat\nb,hi,{'l' * 201}\n",
        2,
        "label",
    ),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv_values_the_database_cannot_hold_are_refused_by_row_and_column(
    team, dataset, tmp_path, case
):
    content, row, column = CSV_CASES[case]
    before = snapshot()
    job = run_import(team, tmp_path, "csv", content)
    assert_refused(job, row, column)
    assert snapshot() == before


def test_an_id_of_the_limit_is_taken(team, dataset, tmp_path):
    job = run_import(team, tmp_path, "csv", f"id,text\n{'x' * MAX_ID_LENGTH},hi\n")
    assert job.status == JobStatus.DONE, job.problems


JSONL_CASES = {
    "lone surrogate in text": ({"text": "\ud800"}, "text"),
    "lone surrogate in id": ({"id": "b\udfff"}, "id"),
    "NUL in label": ({"label": "c\x00t"}, "label"),
    "NUL in a metadata key": ({"metadata": {"k\x00": 1}}, "metadata"),
    "lone surrogate in a metadata value": ({"metadata": {"k": ["\ud800"]}}, "metadata"),
    "metadata thousands deep": ({"metadata": nested(5000)}, "metadata"),
    "metadata past the depth limit": ({"metadata": nested(MAX_METADATA_DEPTH + 1)}, "metadata"),
    "id too long": ({"id": "x" * (MAX_ID_LENGTH + 1)}, "id"),
}


@pytest.mark.parametrize("case", list(JSONL_CASES))
def test_jsonl_values_the_database_cannot_hold_are_refused_by_row_and_column(
    team, dataset, tmp_path, case
):
    change, column = JSONL_CASES[case]
    bad = {**GOOD, "id": "b", "metadata": {}, **change}
    lines = [json.dumps({**GOOD, "metadata": {}}), _dumps_deep(bad)]
    before = snapshot()
    job = run_import(team, tmp_path, "jsonl", "\n".join(lines) + "\n")
    assert_refused(job, 2, column)
    assert snapshot() == before


def _dumps_deep(row: dict) -> str:
    """json.dumps recurses too; a row nested thousands deep is written by hand."""
    meta = row.get("metadata")
    depth = 0
    while isinstance(meta, dict) and "a" in meta:
        meta, depth = meta["a"], depth + 1
    if depth < 900:
        return json.dumps(row)
    shallow = {**row, "metadata": "@"}
    return json.dumps(shallow).replace('"@"', '{"a": ' * depth + "{}" + "}" * depth)


PARQUET_CASES = {
    "NUL in text": ({"text": "hi\x00"}, "text"),
    "NUL in id": ({"id": "b\x00"}, "id"),
    "NUL in a metadata value": ({"metadata": json.dumps({"k": "\x00"})}, "metadata"),
    "metadata thousands deep": ({"metadata": DEEP}, "metadata"),
    "NUL in a meta_ column": ({"meta_source": "w\x00b"}, "meta_source"),
    "id too long": ({"id": "x" * (MAX_ID_LENGTH + 1)}, "id"),
}


@pytest.mark.parametrize("case", list(PARQUET_CASES))
def test_parquet_values_the_database_cannot_hold_are_refused_by_row_and_column(
    team, dataset, tmp_path, case
):
    change, column = PARQUET_CASES[case]
    base = {**GOOD, "metadata": "{}", "meta_source": "web"}
    before = snapshot()
    job = run_import(team, tmp_path, "parquet", [base, {**base, "id": "b", **change}])
    assert_refused(job, 2, column)
    assert snapshot() == before


def test_a_tabular_feature_with_nul_is_refused_naming_its_column(team, dataset, tmp_path):
    Dataset.objects.filter(pk=dataset.pk).update(modality="tabular")
    before = snapshot()
    job = run_import(team, tmp_path, "csv", "id,colour\nok,red\nb,bl\x00ue\n")
    assert_refused(job, 2, "colour")
    assert snapshot() == before


@pytest.mark.parametrize(
    "content,says",
    [
        ("id,prob_cat,prob_dog\nb\x00,0.5,0.5\n", "NUL"),
        (
            f"id,prob_cat,prob_dog\n{'x' * (MAX_ID_LENGTH + 1)},0.5,0.5\n",
            f"at most {MAX_ID_LENGTH}",
        ),
    ],
)
def test_model_run_ids_follow_the_same_rule(team, dataset, tmp_path, content, says):
    run_import(team, tmp_path, "csv", "id,text,label\nb,hi,cat\n")
    before = snapshot()
    job = run_import(team, tmp_path, "csv", content, kind="model_run")
    assert_refused(job, 1, "id")
    assert says in job.problems[0]["message"]
    assert snapshot() == before


def test_parquet_dates_and_decimals_in_metadata_are_kept_as_text_and_numbers(
    team, dataset, tmp_path
):
    from datetime import UTC, date, datetime
    from decimal import Decimal

    from apps.datasets.models import Sample

    rows = [
        {
            **GOOD,
            "meta_seen": datetime(2025, 1, 2, 3, 4, tzinfo=UTC),
            "meta_day": date(2025, 1, 2),
            "meta_price": Decimal("1.25"),
        }
    ]
    job = run_import(team, tmp_path, "parquet", rows)
    assert job.status == JobStatus.DONE, (job.error, job.problems)
    assert Sample.objects.get(external_id="ok").metadata == {
        "seen": "2025-01-02T03:04:00+00:00",
        "day": "2025-01-02",
        "price": 1.25,
    }


def test_a_metadata_value_json_cannot_hold_is_refused_by_row_and_column(team, dataset, tmp_path):
    rows = [{**GOOD, "meta_blob": b"\x00\x01"}, {**GOOD, "id": "b", "meta_blob": None}]
    before = snapshot()
    job = run_import(team, tmp_path, "parquet", rows)
    assert_refused(job, 1, "meta_blob")
    assert snapshot() == before


@pytest.mark.parametrize("column", ["embedding", "probs"])
def test_vectors_wider_than_the_database_holds_are_refused_by_column(
    team, dataset, tmp_path, column
):
    width = 16_001
    rows = [{**GOOD, column: [1.0 / width] * width}]
    before = snapshot()
    job = run_import(team, tmp_path, "jsonl", rows)
    assert job.status == JobStatus.FAILED
    assert column in [p["column"] for p in job.problems], job.problems
    said = job.error + json.dumps(job.problems)
    assert "16,000" in said and not any(word in said for word in INTERNAL), said
    assert snapshot() == before
