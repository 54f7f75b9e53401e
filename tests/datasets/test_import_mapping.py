"""Columns mapped to roles and ids made from content: the rules, and imports that use them in
every format, all or nothing, with problems naming the file's own columns."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.datasets.importing.mapping import (
    MappingRefused,
    content_id,
    content_key,
    conventional_names,
    role_by_name,
    role_problems,
    roles_for,
)
from apps.datasets.importing.preview import preview_file
from apps.datasets.models import Dataset, Embedding, ModelRun, Prediction, Sample
from tests.datasets.conftest import snapshot
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


# --- The rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "column,tabular,role",
    [
        ("id", False, "id"),
        ("text", False, "text"),
        ("emb_3", False, "embedding"),
        ("embedding", False, "embedding"),
        ("prob_cat", False, "probs"),
        ("probs", False, "probs"),
        ("meta_source", False, "metadata"),
        ("metadata", False, "metadata"),
        ("Kategorie", False, None),
        ("Kategorie", True, "feature"),
    ],
)
def test_roles_by_name_are_the_import_conventions(column, tabular, role):
    assert role_by_name(column, tabular=tabular) == role


def test_a_file_in_the_conventions_is_read_as_it_is_named():
    header = ["id", "text", "label", "meta_source", "emb_0", "emb_1", "prob_cat", "prob_dog"]
    renaming = conventional_names(header, None, tabular=False)
    assert renaming.names == header and renaming.original == {}


def test_mapped_columns_are_read_under_their_roles_names():
    header = ["Nr", "Beschreibung", "Kategorie", "Quelle", "x", "y", "p_cat", "p_dog", "Notiz"]
    mapping = {
        "Nr": "id",
        "Beschreibung": "text",
        "Kategorie": "label",
        "Quelle": "metadata",
        "x": "embedding",
        "y": "embedding",
        "p_cat": "probs",
        "p_dog": "probs",
        "Notiz": "ignore",
    }
    renaming = conventional_names(header, mapping, tabular=False)
    assert renaming.names == [
        "id",
        "text",
        "label",
        "meta_Quelle",
        "emb_0",
        "emb_1",
        "prob_p_cat",
        "prob_p_dog",
        None,
    ]
    assert renaming.original["label"] == "Kategorie"


def test_one_list_column_is_the_embedding_or_the_probabilities():
    renaming = conventional_names(
        ["key", "vec", "p"], {"key": "id", "vec": "embedding", "p": "probs"}, tabular=False
    )
    assert renaming.names == ["id", "embedding", "probs"]


@pytest.mark.parametrize(
    "header,mapping,column,message",
    [
        (["a", "b"], {"a": "label", "b": "label"}, "b", "'a' and 'b' are both mapped to label"),
        (["a"], {"nope": "label"}, "nope", "no column of that name in the file"),
        (["a"], {"a": "colour"}, "a", "unknown role 'colour'"),
        (["source", "meta_source"], {"source": "metadata"}, "meta_source", "both be read"),
        (["meta_x"], {"meta_x": "feature"}, "meta_x", "a feature column cannot have"),
    ],
)
def test_a_mapping_that_cannot_apply_names_the_column(header, mapping, column, message):
    with pytest.raises(MappingRefused) as refused:
        conventional_names(header, mapping, tabular=True)
    assert refused.value.column == column and message in refused.value.message


@pytest.mark.parametrize(
    "roles,generate,problem",
    [
        (["text", "label"], False, ("-", "no column is the id")),
        (["id", "text", "label", "label"], False, ("d", "'c' and 'd' are both mapped to label")),
        (["id", "text", None], False, ("c", "choose what this column is")),
        (["id", "metadata", "label"], False, ("-", "no text column in a text dataset")),
        (["id", "text", "label"], True, ("a", "ids are generated")),
        (["id", "text", "feature"], False, ("c", "feature columns are for tabular datasets")),
    ],
)
def test_problems_the_preview_shows(roles, generate, problem):
    header = ["a", "b", "c", "d"][: len(roles)]
    problems = role_problems(header, roles, modality="text", generate_ids=generate)
    assert any(c == problem[0] and problem[1] in m for c, m in problems), problems


def test_a_file_in_the_conventions_has_no_problems():
    header = ["id", "text", "label", "split", "meta_source"]
    roles = roles_for(header, None, tabular=False)
    assert role_problems(header, roles, modality="text", generate_ids=False) == []


def test_generated_ids_depend_on_the_content_alone():
    key = content_key(modality="text", text="  Café\r\nau lait ", image="", features=None)
    assert key == content_key(modality="text", text="Café\nau lait", image="", features=None)
    assert content_id(key) == content_id("Café\nau lait")
    assert len(content_id(key)) == 16 and content_id(key) != content_id("Café au lait")
    features = content_key(modality="tabular", text=None, image="", features={"b": 1, "a": 2})
    assert features == content_key(
        modality="tabular", text=None, image="", features={"a": 2, "b": 1}
    )


def test_the_preview_reads_the_first_rows_and_the_format(tmp_path):
    path = tmp_path / "sheet.csv"
    rows = [["Beschreibung", "Kategorie"]] + [[f"Tür {i}, lang", "a"] for i in range(30)]
    with path.open("w", encoding="cp1252", newline="") as f:
        csv.writer(f, delimiter=";").writerows(rows)
    preview = preview_file(str(path), "csv")
    assert preview.header == ["Beschreibung", "Kategorie"]
    assert len(preview.rows) == 20 and preview.rows[0] == ["Tür 0, lang", "a"]
    assert (preview.delimiter_name, preview.encoding_name, preview.row_count) == (
        "semicolon",
        "Windows-1252",
        30,
    )
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"a": 1, "b": [1, 2]}\n{"a": 2}\n')
    preview = preview_file(str(jsonl), "jsonl")
    assert preview.rows == [["1", "[1, 2]"], ["2", ""]] and preview.row_count == 2
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": list(range(50)), "t": ["x"] * 50}), parquet)
    preview = preview_file(str(parquet), "parquet")
    assert preview.row_count == 50 and len(preview.rows) == 20 and preview.rows[1] == ["1", "x"]


# --- Imports --------------------------------------------------------------------------------


@pytest.fixture
def owner(transactional_db):
    return UserFactory(username="olga")


def run_import(path, *, dataset="tickets", create=True, columns=None, **options) -> dict:
    out = io.StringIO()
    call_command(
        "import_samples",
        str(path),
        project="desk",
        dataset=dataset,
        create=create,
        user="olga",
        json=True,
        stdout=out,
        stderr=io.StringIO(),
        column=[f"{k}={v}" for k, v in (columns or {}).items()],
        **options,
    )
    return json.loads(out.getvalue().strip().splitlines()[-1])


def refusal(path, **options) -> dict:
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_samples",
            str(path),
            project="desk",
            dataset="tickets",
            user="olga",
            json=True,
            stdout=out,
            stderr=io.StringIO(),
            column=[f"{k}={v}" for k, v in (options.pop("columns", None) or {}).items()],
            **options,
        )
    return json.loads(out.getvalue().strip().splitlines()[-1])


GERMAN = {"Beschreibung": "text", "Kategorie": "label", "Quelle": "metadata", "Notiz": "ignore"}


def write_semicolon_csv(path, rows):
    with path.open("w", encoding="cp1252", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["Beschreibung", "Kategorie", "Quelle", "Notiz"])
        writer.writerows(rows)
    return path


def test_a_spreadsheet_without_ids_imports_with_ids_from_its_text(owner, tmp_path):
    path = write_semicolon_csv(
        tmp_path / "tickets.csv",
        [
            ["Paket kam beschädigt an", "Versand", "web", "x"],
            ["Wie ändere ich meine Adresse?", "Konto", "app", "y"],
            ["Paket kam beschädigt an", "Versand", "app", "z"],
        ],
    )
    result = run_import(path, columns=GERMAN, generate_ids=True)
    assert result["imported"] == 3
    first = content_id("Paket kam beschädigt an")
    samples = {s.external_id: s for s in Sample.objects.all()}
    assert set(samples) == {first, f"{first}-2", content_id("Wie ändere ich meine Adresse?")}
    assert samples[first].label == "Versand" and samples[first].metadata == {"Quelle": "web"}
    assert samples[f"{first}-2"].metadata == {"Quelle": "app"}
    assert Dataset.objects.get().labels == ["Konto", "Versand"]

    # The same texts again, one relabelled, rows in another order: the same samples, updated.
    again = write_semicolon_csv(
        tmp_path / "tickets2.csv",
        [
            ["Wie ändere ich meine Adresse?", "Versand", "app", ""],
            ["Paket kam beschädigt an", "Versand", "web", ""],
            ["Paket kam beschädigt an", "Versand", "app", ""],
        ],
    )
    with pytest.raises(CommandError, match="already in the dataset"):
        run_import(again, create=False, columns=GERMAN, generate_ids=True)
    result = run_import(
        again, create=False, columns=GERMAN, generate_ids=True, on_duplicate="upsert"
    )
    assert (result["imported"], result["updated"]) == (0, 3)
    assert Sample.objects.count() == 3
    assert Sample.objects.get(external_id=content_id("Wie ändere ich meine Adresse?")).label == (
        "Versand"
    )


def _records():
    return [
        {"key": "a", "body": "the cat sat", "tag": "cat", "src": "web", "v0": 0.5, "v1": 1.0,
         "cat": 0.9, "dog": 0.1, "junk": "zzz"},
        {"key": "b", "body": "a dog barked", "tag": "dog", "src": "book", "v0": -1.0, "v1": 0.0,
         "cat": 0.2, "dog": 0.8, "junk": "yyy"},
    ]  # fmt: skip


MAPPING = {
    "key": "id",
    "body": "text",
    "tag": "label",
    "src": "metadata",
    "v0": "embedding",
    "v1": "embedding",
    "cat": "probs",
    "dog": "probs",
    "junk": "ignore",
}


def write_records(path, fmt, records):
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif fmt == "csv":
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_every_role_mapped_in_every_format(fmt, owner, tmp_path):
    path = write_records(tmp_path / f"d.{fmt}", fmt, _records())
    result = run_import(path, columns=MAPPING)
    assert result["imported"] == 2
    a = Sample.objects.get(external_id="a")
    assert (a.text, a.label, a.metadata) == ("the cat sat", "cat", {"src": "web"})
    assert "junk" not in json.dumps(a.metadata) and a.fields is None
    assert list(Embedding.objects.get(sample=a).vector) == [0.5, 1.0]
    run = ModelRun.objects.get()
    # One probability column per class, named by its class.
    assert run.classes == ["cat", "dog"]
    assert list(Prediction.objects.get(sample=a).probs) == pytest.approx([0.9, 0.1])


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_problems_name_the_files_columns_and_change_nothing(fmt, owner, tmp_path):
    run_import(write_records(tmp_path / f"ok.{fmt}", fmt, _records()), columns=MAPPING)
    before = snapshot()
    records = _records()
    records[1]["tag"] = "bird"
    records[0]["key"] = "c"
    records[1]["key"] = "d"
    report = refusal(write_records(tmp_path / f"bad.{fmt}", fmt, records), columns=MAPPING)
    assert {"row": 2, "column": "tag", "message": report["problems"][0]["message"]} in report[
        "problems"
    ]
    assert "label 'bird'" in report["problems"][0]["message"]
    assert snapshot() == before


@pytest.mark.parametrize(
    "columns,generate,column,message",
    [
        ({"nope": "label"}, False, "nope", "no column of that name"),
        ({"Beschreibung": "text", "Kategorie": "label", "Quelle": "label"}, True, "Quelle",
         "both mapped to label"),
        ({"Beschreibung": "text", "Kategorie": "label"}, True, "Quelle", "unknown column"),
        ({"Beschreibung": "text", "Kategorie": "label", "Quelle": "id", "Notiz": "ignore"}, True,
         "Quelle", "ids are generated"),
    ],
)  # fmt: skip
def test_a_mapping_that_does_not_fit_is_refused_naming_the_column(
    columns, generate, column, message, owner, tmp_path
):
    path = write_semicolon_csv(tmp_path / "t.csv", [["Text", "Konto", "web", ""]])
    run_import(path, columns=GERMAN, generate_ids=True)
    before = snapshot()
    out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command(
            "import_samples",
            str(path),
            project="desk",
            dataset="tickets",
            user="olga",
            json=True,
            stdout=out,
            stderr=io.StringIO(),
            column=[f"{k}={v}" for k, v in columns.items()],
            generate_ids=generate,
        )
    assert f"Column {column!r}" in str(refused.value) and message in str(refused.value)
    assert snapshot() == before


def test_without_ids_or_a_mapping_the_refusal_says_what_to_do(owner, tmp_path):
    path = tmp_path / "noid.csv"
    path.write_text("text,label\nhello,cat\n")
    report = refusal(path, create=True)
    assert "map a column to id, or generate ids" in report["error"]
    result = run_import(path, generate_ids=True)
    assert Sample.objects.get().external_id == content_id("hello") and result["imported"] == 1


def test_tabular_ids_come_from_the_features(owner, tmp_path):
    path = tmp_path / "tab.csv"
    path.write_text("width,height,label\n1.5,2,a\n3,4,b\n1.5,2,b\n")
    run_import(path, generate_ids=True, modality="tabular")
    ids = set(Sample.objects.values_list("external_id", flat=True))
    key = content_key(modality="tabular", text=None, image="", features={"width": 1.5, "height": 2})
    assert {content_id(key), f"{content_id(key)}-2"} < ids and len(ids) == 3
