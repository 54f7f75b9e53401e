"""The `loupe` command line against the live test server, and the client without the server."""

# ruff: noqa: F811 - the live-server fixtures of test_client are imported by name

from __future__ import annotations

import csv
import io
import json
import stat
import subprocess
import sys

import pytest
from loupe_client.cli import main
from loupe_client.records import write_parquet

from apps.datasets.importing.mapping import content_id
from apps.datasets.models import Sample
from apps.quality.models import ScoringRun
from tests.client.test_client import LABELS, client_env, key, live_url, make_data  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

SERVER_MODULES = ("django", "celery", "sklearn", "faiss", "psycopg", "psycopg2", "apps", "workers")


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "home" / "loupe" / "config.json"
    monkeypatch.setenv("LOUPE_CONFIG", str(path))
    monkeypatch.delenv("LOUPE_URL", raising=False)
    monkeypatch.delenv("LOUPE_TOKEN", raising=False)
    return path


@pytest.fixture
def logged_in(config, live_url, key, monkeypatch):
    monkeypatch.setenv("LOUPE_URL", live_url)
    monkeypatch.setenv("LOUPE_TOKEN", key)
    return config


def test_login_checks_the_token_and_stores_it_for_this_user_only(
    config, live_url, key, team, capsys
):
    assert main(["login", "--url", live_url, "--token", "not-a-token"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("loupe: error: 401")
    assert "Traceback" not in err and not config.exists()

    assert main(["login", "--url", live_url, "--token", key]) == 0
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert json.loads(config.read_text()) == {"url": live_url, "token": key}
    assert "Logged in" in capsys.readouterr().out

    # The stored server and token serve the next commands.
    assert main(["rules", "list", "--project", "cats-dogs", "--dataset", "nope"]) == 1
    assert "No dataset 'nope'" in capsys.readouterr().err


def test_import_score_and_samples_as_csv(logged_in, team, tmp_path, capsys, celery_worker_process):
    records, embeddings, probs = make_data(120)
    path = tmp_path / "reviews.parquet"
    write_parquet(path, records, embeddings=embeddings, probs=probs)

    args = ["--project", "cats-dogs", "--dataset", "reviews"]
    assert main(["import", str(path), *args, "--labels", "cat,dog", "--timeout", "60"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["imported"] == 120 and result["version"] == 1

    assert main(["score", *args, "--wait", "--timeout", "120"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["status"] == "done"
    assert ScoringRun.objects.get(pk=run["id"]).status == "done"

    query = json.dumps({"field": "margin", "op": "<", "value": 0.5})
    assert main(["samples", *args, "--q", query, "--ordering", "margin", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    margins = [float(r["scores.margin"]) for r in rows]
    assert rows and margins == sorted(margins) and all(m < 0.5 for m in margins)
    assert {r["external_id"] for r in rows} <= {r["id"] for r in records}

    out = tmp_path / "all.parquet"
    assert main(["samples", *args, "--format", "parquet", "-o", str(out)]) == 0
    import pyarrow.parquet as pq

    assert pq.read_table(out).num_rows == 120 and not (tmp_path / "all.parquet.part").exists()

    # The table's columns, streamed from the server's export.
    table = ["samples", *args, "--q", query, "--ordering", "margin", "--format", "csv"]
    assert main([*table, "--columns", "external_id,margin,tags"]) == 0
    streamed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(streamed[0]) == ["external_id", "margin", "tags"]
    assert [r["external_id"] for r in streamed] == [r["external_id"] for r in rows]
    assert [float(r["margin"]) for r in streamed] == margins
    assert main([*table, "--columns", "external_id,nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("loupe: error: 400") and "unknown column 'nope'" in err

    export = tmp_path / "low-margins.parquet"
    assert (
        main(["export", "samples", *args, "-o", str(export), "--q", query, "--ordering", "margin"])
        == 0
    )
    exported = pq.read_table(export)
    assert exported.column_names == [
        "external_id",
        "split",
        "label",
        "suggested_label",
        "mislabel_score",
        "text",
    ]
    assert exported.column("external_id").to_pylist() == [r["external_id"] for r in rows]

    scores = tmp_path / "scores.csv"
    assert main(["export", "scores", *args, "-o", str(scores)]) == 0
    assert scores.read_text().splitlines()[0].startswith("id,")


def test_a_refused_request_prints_the_servers_reason_on_one_line(
    logged_in, team, tmp_path, capsys, celery_worker_process
):
    path = tmp_path / "few.csv"
    path.write_text("id,text,label\na,hello,cat\nb,world,dog\n")
    args = ["--project", "cats-dogs", "--dataset", "few"]
    assert main(["import", str(path), *args, "--labels", "cat,dog", "--timeout", "60"]) == 0
    capsys.readouterr()

    bad = json.dumps({"field": "password", "op": "=", "value": "x"})
    assert main(["samples", *args, "--q", bad]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("loupe: error: 400") and "unknown field" in captured.err
    assert "Traceback" not in captured.err


def test_the_client_and_its_command_line_need_nothing_of_the_server():
    code = f"""
import importlib, pkgutil, sys

class RefuseServer:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_MODULES!r}:
            raise ImportError(f"the client imported {{name}}")
        return None

sys.meta_path.insert(0, RefuseServer())
import loupe_client
from loupe_client import Loupe
for module in pkgutil.walk_packages(loupe_client.__path__, "loupe_client."):
    importlib.import_module(module.name)
import loupe_client.cli
try:
    loupe_client.cli.main(["--help"])
except SystemExit as done:
    assert done.code == 0, done.code
"""
    shown = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=client_env(),
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "loupe import" not in shown.stderr and "login" in shown.stdout


def test_import_a_spreadsheet_with_columns_and_generated_ids(
    logged_in, team, tmp_path, capsys, celery_worker_process
):
    path = tmp_path / "tickets.csv"
    path.write_bytes(
        "Beschreibung;Kategorie\nPaket kaputt;Versand\nAdresse;Konto\n".encode("cp1252")
    )
    args = ["--project", "cats-dogs", "--dataset", "tickets", "--timeout", "60"]
    mapping = ["--column", "Beschreibung=text", "--column", "Kategorie=label"]
    assert main(["import", str(path), *args, *mapping, "--generate-ids"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["imported"] == 2
    assert Sample.objects.filter(external_id=content_id("Paket kaputt"), label="Versand").exists()
    # A mapping that does not fit is refused before anything is imported, naming the column.
    assert main(["import", str(path), *args, "--column", "Nope=label", "--generate-ids"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("loupe: error: 400") and "'Nope'" in err
