"""Importing in every format, all or nothing, and getting the same content back out."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.datasets.exporting import export_dataset
from apps.datasets.models import Dataset, DatasetVersion, Embedding, ModelRun, Prediction, Sample
from tests.datasets.conftest import RECORDS, snapshot
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

FORMATS = ["csv", "jsonl", "parquet"]


@pytest.fixture
def owner(transactional_db):
    return UserFactory(username="olga")


def run_import(path, *, dataset="animals", create=True, **options) -> dict:
    out = io.StringIO()
    call_command(
        "import_samples",
        str(path),
        project="zoo",
        dataset=dataset,
        create=create,
        user="olga",
        json=True,
        stdout=out,
        stderr=io.StringIO(),
        **options,
    )
    return json.loads(out.getvalue().strip().splitlines()[-1])


def read_back(path, fmt) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if fmt == "csv":
        rows = list(csv.DictReader(path.open(newline="")))
        for row in rows:
            row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else {}
            row["label"] = row["label"] or None
            n = len([k for k in row if k.startswith("emb_")])
            row["embedding"] = [float(row.pop(f"emb_{i}")) for i in range(n)]
        return rows
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        row["metadata"] = json.loads(row["metadata"])
    return rows


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(fmt, owner, files, tmp_path):
    result = run_import(files(fmt=fmt))
    assert result["ok"] and result["imported"] == 3 and result["version"] == 1
    dataset = Dataset.objects.get(pk=result["dataset_id"])
    assert dataset.labels == ["cat", "dog"] and dataset.modality == "text"
    assert Embedding.objects.filter(space_id=result["embedding_space_id"]).count() == 3
    run = ModelRun.objects.get(pk=result["model_run_id"])
    assert run.classes == ["cat", "dog"] and Prediction.objects.filter(run=run).count() == 3

    out = tmp_path / f"out.{fmt}"
    with out.open("wb") as f:
        written = export_dataset(
            dataset=dataset,
            version=1,
            fmt=fmt,
            out=f,
            space=dataset.embedding_spaces.get(),
            by=None,
        )
    assert written == 3
    back = {r["id"]: r for r in read_back(out, fmt)}
    for record in RECORDS:
        got = back[record["id"]]
        assert got["text"] == record["text"]
        assert got["label"] == record["label"]
        assert got["split"] == record["split"]
        assert got["metadata"] == record["metadata"]
        assert np.allclose(got["embedding"], record["embedding"])

    # What was exported imports again unchanged, into a new dataset.
    again = run_import(out, dataset="animals-copy")
    copy = Dataset.objects.get(pk=again["dataset_id"])
    fields = ("external_id", "text", "label", "split", "metadata")
    assert sorted(Sample.objects.filter(dataset=copy).values_list(*fields)) == sorted(
        Sample.objects.filter(dataset=dataset).values_list(*fields)
    )


def test_probabilities_follow_the_schema_order_whatever_the_column_order(owner, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,text,label,prob_dog,prob_cat\na,x,cat,0.1,0.9\n")
    run_import(path)
    path2 = tmp_path / "p2.csv"
    path2.write_text("id,text,label,prob_cat,prob_dog\nb,y,dog,0.25,0.75\n")
    result = run_import(path2, create=False)
    dataset = Dataset.objects.get(name="animals")
    assert dataset.labels == ["dog", "cat"]  # a new dataset takes the prob_ columns' order
    probs = Prediction.objects.get(run_id=result["model_run_id"]).probs
    assert np.allclose(probs, [0.75, 0.25])


BAD_FILES = [
    ("csv", 'id,text,label\na,"unclosed,cat\n', 1, "-"),
    ("csv", "id,text,label\na,one,cat,extra\n", 1, "-"),
    ("csv", "text,label\nhello,cat\n", None, "-"),
    ("csv", "id,text,label\n,no id,cat\n", 1, "id"),
    ("csv", "id,text,label\na,x,cat\na,y,dog\n", 2, "id"),
    ("csv", "id,text,label\na,x,giraffe\n", 1, "label"),
    ("csv", "id,text,label,split\na,x,cat,holdout\n", 1, "split"),
    (
        "csv",
        "id,text,label,emb_0,emb_1,emb_2,emb_3\na,x,cat,1,2,3,4\nb,y,dog,nan,1,2,3\n",
        2,
        "emb_*",
    ),
    ("csv", "id,text,label,emb_0,emb_1,emb_2,emb_3\na,x,cat,1,inf,0,0\n", 1, "emb_*"),
    ("csv", "id,text,label,emb_0,emb_1\na,x,cat,1,2\n", 1, "emb_*"),
    ("csv", "id,text,label,prob_cat,prob_dog\na,x,cat,0.5,0.6\n", 1, "prob_*"),
    ("csv", "id,text,label,prob_cat\na,x,cat,1.0\n", None, "prob_*"),
    ("csv", "id,text,label,metadata\na,x,cat,{not json\n", 1, "metadata"),
    ("csv", "id,text,label,colour\na,x,cat,red\n", None, "colour"),  # named: map it to a role
    (
        "jsonl",
        '{"id": "a", "text": "x", "label": "cat", "embedding": [1, 2, 3]}\n{"id": "b", "text": "y", "label": "dog", "embedding": [1, 2]}\n',
        2,
        "embedding",
    ),
    ("jsonl", '{"id": "a", "text": "x", "label": "cat"}\n{"id": "b", "text": \n', 2, "-"),
    (
        "jsonl",
        '{"id": "a", "text": "x", "label": "cat", "probs": [0.5, 0.5, 0.5]}\n',
        None,
        "probs",
    ),
    ("jsonl", '{"id": "a", "text": "", "label": "cat"}\n', 1, "text"),
    ("parquet", "this is not a parquet file", None, "-"),
]


@pytest.mark.parametrize("fmt,content,row,column", BAD_FILES)
def test_a_bad_file_is_refused_naming_row_and_column_and_changes_nothing(
    fmt, content, row, column, owner, files, tmp_path
):
    run_import(files(fmt="csv"))  # an existing dataset with cat and dog
    before = snapshot()
    path = tmp_path / f"bad.{fmt}"
    path.write_text(content)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_samples",
            str(path),
            project="zoo",
            dataset="animals",
            user="olga",
            json=True,
            stdout=out,
            stderr=io.StringIO(),
        )
    report = json.loads(out.getvalue().strip().splitlines()[-1])
    assert report["ok"] is False and report["problem_count"] >= 1
    assert any(p["row"] == row and p["column"] == column for p in report["problems"]), report[
        "problems"
    ]
    assert snapshot() == before


def test_ids_already_in_the_dataset_are_refused_unless_upsert(owner, files, tmp_path):
    run_import(files(fmt="jsonl"))
    before = snapshot()
    again = files(records=[{**RECORDS[0], "label": "dog"}], fmt="jsonl", name="again.jsonl")
    with pytest.raises(CommandError, match="already in the dataset"):
        run_import(again, create=False)
    assert snapshot() == before
    result = run_import(again, create=False, on_duplicate="upsert")
    assert result["version"] == 2 and result["updated"] == 1 and result["imported"] == 0
    sample = Sample.objects.get(external_id="r1")
    assert sample.label == "dog"
    event = sample.history.get()
    assert (event.version, event.label, event.source, event.by.username) == (
        2,
        "dog",
        "import",
        "olga",
    )
    # The embedding moved to the updated sample rather than being duplicated.
    assert Embedding.objects.filter(sample_id=sample.pk).count() == 1


def test_extend_labels(owner, files, tmp_path):
    run_import(files(fmt="jsonl"))
    path = tmp_path / "bird.jsonl"
    path.write_text('{"id": "r9", "text": "tweet", "label": "bird"}\n')
    with pytest.raises(CommandError, match="unknown label 'bird'"):
        run_import(path, create=False)
    result = run_import(path, create=False, extend_labels=True)
    assert result["labels_added"] == ["bird"]
    assert Dataset.objects.get(name="animals").labels == ["cat", "dog", "bird"]


def test_problems_are_capped_at_100_with_a_count(owner, tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("id,text,label,split\n" + "".join(f"s{i},t,cat,nowhere\n" for i in range(250)))
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_samples",
            str(path),
            project="zoo",
            dataset="animals",
            create=True,
            user="olga",
            json=True,
            stdout=out,
            stderr=io.StringIO(),
        )
    report = json.loads(out.getvalue().strip().splitlines()[-1])
    assert report["problem_count"] == 250 and len(report["problems"]) == 100
    assert [p["row"] for p in report["problems"]] == list(range(1, 101))


def test_a_file_over_the_size_limit_is_refused(owner, files, settings):
    settings.LOUPE_IMPORT_MAX_BYTES = 10
    with pytest.raises(CommandError, match="the limit is 10"):
        run_import(files(fmt="csv"))
    assert Sample.objects.count() == 0


def test_command_errors(owner, files):
    path = files(fmt="csv")
    with pytest.raises(CommandError, match="No project with the slug 'zoo'"):
        call_command(
            "import_samples", str(path), project="zoo", dataset="animals", stderr=io.StringIO()
        )
    with pytest.raises(CommandError, match="--create needs --user"):
        call_command(
            "import_samples",
            str(path),
            project="zoo",
            dataset="animals",
            create=True,
            stderr=io.StringIO(),
        )
    with pytest.raises(CommandError, match="No such file"):
        call_command(
            "import_samples", "/nonexistent.csv", project="zoo", dataset="a", stderr=io.StringIO()
        )


def test_tabular_features_round_trip(owner, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,age,income,city,label\na,31,52000.5,Oslo,yes\nb,47,,Lima,no\n")
    result = run_import(path)
    dataset = Dataset.objects.get(pk=result["dataset_id"])
    assert dataset.modality == "tabular"
    assert Sample.objects.get(external_id="a").fields == {
        "age": 31,
        "income": 52000.5,
        "city": "Oslo",
    }
    assert Sample.objects.get(external_id="b").fields == {"age": 47, "income": None, "city": "Lima"}
    out = io.BytesIO()
    export_dataset(dataset=dataset, version=1, fmt="jsonl", out=out, by=None)
    rows = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert rows[0] == {
        "id": "a",
        "split": "train",
        "label": "yes",
        "age": 31,
        "income": 52000.5,
        "city": "Oslo",
        "metadata": {},
    }


def test_csv_export_cells_cannot_run_as_formulas(owner, tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text(
        json.dumps(
            {
                "id": '=HYPERLINK("http://x")',
                "text": "+1+1",
                "label": "cat",
                "metadata": {"note": "@SUM(A1)"},
            }
        )
        + "\n"
        + json.dumps({"id": "ok", "text": "-2", "label": "cat"})
        + "\n"
    )
    result = run_import(path)
    out = io.BytesIO()
    export_dataset(
        dataset=Dataset.objects.get(pk=result["dataset_id"]), version=1, fmt="csv", out=out, by=None
    )
    rows = list(csv.reader(io.StringIO(out.getvalue().decode())))
    cells = [cell for row in rows[1:] for cell in row]
    assert '\'=HYPERLINK("http://x")' in cells and "'+1+1" in cells and "'-2" in cells
    assert not any(cell[:1] in ("=", "+", "-", "@") for cell in cells)


def test_an_empty_file_is_refused(owner, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("id,text,label\n")
    with pytest.raises(CommandError, match="no rows"):
        run_import(path)
    assert DatasetVersion.objects.count() == 0


@pytest.mark.parametrize(
    "encoding,delimiter",
    [("cp1252", ";"), ("utf-8-sig", "\t"), ("utf-16", "|"), ("utf-8", ",")],
)
def test_spreadsheet_csv_in_another_delimiter_and_encoding(owner, tmp_path, encoding, delimiter):
    """What a spreadsheet saves in many locales: semicolons, decimal commas, Windows-1252 text;
    tabs and UTF-16 from others. Read as the file is written, not refused for 'no id column'."""
    comma = delimiter == ";"
    rows = [
        ["id", "text", "label", "meta_price", "prob_cat", "prob_dog"],
        [
            "a",
            "Café crème, très bon",
            "cat",
            "2,5" if comma else "2.5",
            "0,9" if comma else "0.9",
            "0,1" if comma else "0.1",
        ],
        ["b", "Façade, naïve", "dog", "10", "0,2" if comma else "0.2", "0,8" if comma else "0.8"],
    ]
    path = tmp_path / "sheet.csv"
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    result = run_import(path)
    dataset = Dataset.objects.get(pk=result["dataset_id"])
    a = Sample.objects.get(dataset=dataset, external_id="a")
    assert a.text == "Café crème, très bon" and a.label == "cat"
    assert a.metadata == {"price": 2.5}
    assert Sample.objects.get(dataset=dataset, external_id="b").text == "Façade, naïve"
    [run] = ModelRun.objects.filter(dataset=dataset)
    probs = {p.sample.external_id: p.probs for p in Prediction.objects.filter(run=run)}
    assert probs["a"] == pytest.approx([0.9, 0.1]) and probs["b"] == pytest.approx([0.2, 0.8])
