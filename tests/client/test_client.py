"""The Python client against the live test server and a real Celery worker: chunked upload,
retries, refusals, errors and export, as a user of the client sees them."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow.parquet as pq
import pytest
import requests
import urllib3
from django.db import connection
from loupe_client import ImportRefused, Loupe, LoupeError
from loupe_client.records import write_parquet

from apps.accounts.services import api_token_create
from apps.datasets.models import (
    Dataset,
    DatasetVersion,
    Embedding,
    LabelEvent,
    ModelRun,
    Prediction,
    Sample,
)

pytestmark = pytest.mark.django_db(transaction=True)

LABELS = ["cat", "dog"]
CLIENT_PATH = Path(__file__).resolve().parents[2] / "clients" / "python"


def client_env() -> dict[str, str]:
    """The environment of a Python subprocess that imports this checkout's client."""
    return {**os.environ, "PYTHONPATH": str(CLIENT_PATH)}


def make_data(n: int = 200, *, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    records = [
        {
            "id": f"s{i}",
            "text": f"sample number {i} about a {LABELS[i % 2]}",
            "label": LABELS[i % 2] if i % 10 else None,
            "split": "test" if i % 5 == 0 else "train",
            "metadata": {"source": "web", "n": i},
            "meta_batch": i // 50,
        }
        for i in range(n)
    ]
    embeddings = rng.normal(size=(n, dim))
    p_cat = rng.uniform(0.05, 0.95, size=n)
    probs = np.column_stack([p_cat, 1 - p_cat])
    return records, embeddings, probs


def state() -> dict:
    """Everything an import may touch, to see that a refused one changed nothing."""
    return {
        "samples": sorted(Sample.objects.values_list("external_id", "label", "split", "active")),
        "events": LabelEvent.objects.count(),
        "versions": DatasetVersion.objects.count(),
        "embeddings": Embedding.objects.count(),
        "runs": ModelRun.objects.count(),
        "predictions": Prediction.objects.count(),
        "labels": list(Dataset.objects.order_by("pk").values_list("labels", flat=True)),
    }


def settled() -> dict:
    """`state()` once an import's follow-up on the worker's queue (embedding the texts it
    brought) has run."""
    deadline = time.monotonic() + 60
    while Embedding.objects.count() < Sample.objects.count() and time.monotonic() < deadline:
        time.sleep(0.2)
    return state()


class Wire:
    """Wraps each attempt urllib3 makes (its retries included, which happen below requests):
    records every call and lets a test replace answers."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, str, str | None, int | None]] = []
        # fault(pool, real_request, method, url, kwargs, call_number) -> Response | None, where
        # real_request(pool, method, url, **kwargs) makes the attempt for real.
        self.fault = None
        real = urllib3.connectionpool.HTTPConnectionPool._make_request
        wire = self

        def attempt(pool, method, url, **kwargs):
            target = urlsplit(url)._replace(scheme="", netloc="").geturl()
            return real(pool, kwargs.pop("conn"), method, target, **kwargs)

        def make_request(pool, conn, method, url, **kwargs):
            content_range = (kwargs.get("headers") or {}).get("Content-Range")
            full_url = f"{pool.scheme}://{pool.host}:{pool.port}{url}"
            n = len(wire.calls)
            try:
                fake = (
                    wire.fault(pool, attempt, method, full_url, {"conn": conn, **kwargs}, n)
                    if wire.fault
                    else None
                )
                if fake is not None:
                    fake._connection = kwargs.get("response_conn")
                    fake._pool = pool
                    fake.retries = kwargs.get("retries")
                resp = fake if fake is not None else real(pool, conn, method, url, **kwargs)
            except OSError:
                wire.calls.append((method, full_url, content_range, None))
                raise
            wire.calls.append((method, full_url, content_range, resp.status))
            return resp

        monkeypatch.setattr(
            urllib3.connectionpool.HTTPConnectionPool, "_make_request", make_request
        )

    def puts(self):
        return [c for c in self.calls if c[0] == "PUT"]


def fake_response(status: int, body: dict, url: str) -> urllib3.HTTPResponse:
    content = json.dumps(body).encode()
    return urllib3.HTTPResponse(
        body=io.BytesIO(content),
        headers={"Content-Type": "application/json", "Content-Length": str(len(content))},
        status=status,
        reason={503: "Service Unavailable"}.get(status, "OK"),
        preload_content=False,
        request_url=url,
    )


@pytest.fixture
def key(team) -> str:
    _token, key = api_token_create(
        user=team.user("owner"), name="client tests", by=team.user("owner")
    )
    return key


@pytest.fixture
def live_url(live_server, django_db_blocker):
    yield live_server.url
    # A live-server request thread keeps its database connection (CONN_MAX_AGE) until the
    # client's kept-alive socket is closed, and lets go of it a moment after; wait for that,
    # or dropping the test database at the end of the run may find it still in use.
    with django_db_blocker.unblock():
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and server_sessions():
            time.sleep(0.05)


def server_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
               AND backend_type = 'client backend' AND pid <> pg_backend_pid()"""
        )
        return cursor.fetchone()[0]


@pytest.fixture
def loupe(live_url, key):
    with Loupe(live_url, key, chunk_bytes=1024, backoff=0.01, timeout=30) as lp:
        yield lp


@pytest.fixture
def wire(monkeypatch) -> Wire:
    return Wire(monkeypatch)


def test_client_imports_without_django():
    code = "import sys; import loupe_client; assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=client_env())


def test_log_dataset_uploads_in_chunks_stores_vectors_and_exports_again(
    loupe, team, wire, tmp_path, celery_worker_process
):
    records, embeddings, probs = make_data()
    stages: list[tuple[str, float]] = []
    result = loupe.log_dataset(
        "cats-dogs",
        "reviews",
        records,
        embeddings=embeddings,
        probs=probs,
        labels=LABELS,
        poll=0.2,
        wait_timeout=60,
        progress=lambda stage, fraction: stages.append((stage, fraction)),
    )

    assert result["imported"] == 200 and result["updated"] == 0 and result["version"] == 1
    puts = wire.puts()
    assert len(puts) > 5 and all(status == 200 for *_, status in puts)
    assert puts[0][2].startswith("bytes 0-1023/")
    for stage in ("write", "upload", "import"):
        assert [f for s, f in stages if s == stage][-1] == 1.0

    dataset = Dataset.objects.get(pk=result["dataset_id"])
    assert dataset.project == team.project and dataset.name == "reviews"
    assert dataset.modality == "text" and dataset.labels == LABELS
    samples = {s.external_id: s for s in Sample.objects.filter(dataset=dataset)}
    assert len(samples) == 200
    assert samples["s3"].label == "dog" and samples["s10"].label is None
    assert samples["s5"].split == "test"
    assert samples["s7"].metadata == {"source": "web", "n": 7, "batch": 0}

    vectors = {
        e.sample.external_id: np.asarray(e.vector)
        for e in Embedding.objects.filter(space_id=result["embedding_space_id"]).select_related(
            "sample"
        )
    }
    assert len(vectors) == 200
    np.testing.assert_allclose(vectors["s42"], embeddings[42], rtol=1e-6)
    run = ModelRun.objects.get(pk=result["model_run_id"])
    assert run.classes == LABELS
    predictions = {
        p.sample.external_id: np.asarray(p.probs)
        for p in Prediction.objects.filter(run=run).select_related("sample")
    }
    assert len(predictions) == 200
    np.testing.assert_allclose(predictions["s9"], probs[9], rtol=1e-6)

    # The client's reading of the server agrees.
    assert [d["name"] for d in loupe.datasets("cats-dogs")] == ["reviews"]
    detail = loupe.dataset(dataset.pk)
    assert detail["latest_version"] == 1 and sum(c["n"] for c in detail["counts"]) == 200

    # What was logged exports again: the labels round-trip through a Parquet download.
    path = loupe.export_dataset(dataset.pk, tmp_path / "out.parquet")
    exported = pq.read_table(path).to_pylist()
    assert {r["id"]: r["label"] for r in exported} == {r["id"]: r["label"] for r in records}
    assert not (tmp_path / "out.parquet.part").exists()
    csv_path = loupe.export_dataset(dataset.pk, tmp_path / "out.csv", version=1)
    assert csv_path.read_text().splitlines()[0].startswith("id,")


def test_refused_import_names_rows_and_columns_and_changes_nothing(loupe, celery_worker_process):
    records, _, _ = make_data(60)
    loupe.log_dataset("cats-dogs", "reviews", records, labels=LABELS, poll=0.2, wait_timeout=60)
    before = settled()

    more, _, _ = make_data(60, seed=1)
    more = [{**r, "id": f"new{i}"} for i, r in enumerate(more)]
    more[4]["label"] = "bird"
    more[9]["label"] = "fish"
    more[20]["split"] = "holdout"
    with pytest.raises(ImportRefused) as refused:
        loupe.log_dataset("cats-dogs", "reviews", more, poll=0.2, wait_timeout=60)

    error = refused.value
    assert isinstance(error, LoupeError)
    assert error.problem_count == 3
    assert [(p["row"], p["column"]) for p in error.problems] == [
        (5, "label"),
        (10, "label"),
        (21, "split"),
    ]
    assert "row 5, column 'label'" in str(error) and "bird" in str(error)
    assert state() == before


def test_failed_chunks_are_retried_and_the_upload_resumes_where_the_server_stands(
    loupe, wire, celery_worker_process
):
    records, embeddings, _ = make_data(150)
    puts_seen: list[int] = []

    def fault(session, real, method, url, kwargs, n):
        if method != "PUT":
            return None
        puts_seen.append(n)
        if len(puts_seen) == 2:  # the server is briefly unavailable
            return fake_response(503, {"detail": "Try again."}, url)
        if len(puts_seen) == 5:  # the chunk is stored but the answer is lost
            real(session, method, url, **kwargs)
            raise requests.ConnectionError("connection reset")
        if len(puts_seen) == 8:  # a proxy claims a chunk arrived that never did
            _start, end = kwargs["headers"]["Content-Range"].split()[1].split("/")[0].split("-")
            return fake_response(200, {"received": int(end) + 1}, url)
        return None

    wire.fault = fault
    result = loupe.log_dataset(
        "cats-dogs", "retried", records, embeddings=embeddings, poll=0.2, wait_timeout=60
    )

    assert result["imported"] == 150
    ranges = [c[2] for c in wire.puts()]
    statuses = [c[3] for c in wire.puts()]
    assert statuses[1] == 503 and ranges[2] == ranges[1]  # retried as it was
    assert statuses[4] is None and ranges[5] == ranges[4]  # re-sent after a lost answer: harmless
    assert 409 in statuses  # the chunk after the lie was refused...
    resumed = statuses.index(409) + 1
    assert ranges[resumed] == ranges[7]  # ...and the client went back to the server's offset
    got = Sample.objects.filter(dataset_id=result["dataset_id"]).order_by("id")
    assert [s.external_id for s in got] == [r["id"] for r in records]
    assert Embedding.objects.filter(space_id=result["embedding_space_id"]).count() == 150


def test_wrong_token_raises_401_without_retrying(live_url, team, wire):
    with Loupe(live_url, "not-a-token", backoff=0.01) as lp:
        with pytest.raises(LoupeError) as error:
            lp.projects()
        assert error.value.status == 401
        assert "401" in str(error.value) and "token" in str(error.value).lower()
        with pytest.raises(LoupeError) as error:
            lp.log_dataset("cats-dogs", "x", [{"id": "a", "text": "t"}])
    assert error.value.status == 401
    assert len(wire.calls) == 2


def test_viewer_gets_403_at_once_and_unknown_project_is_named(live_url, team, wire):
    _token, key = api_token_create(user=team.user("viewer"), name="viewer", by=team.user("viewer"))
    with Loupe(live_url, key, backoff=0.01) as lp:
        with pytest.raises(LoupeError) as error:
            lp.log_dataset("cats-dogs", "x", [{"id": "a", "text": "t"}])
        assert error.value.status == 403
        assert wire.calls[-1][0] == "POST" and wire.calls[-1][3] == 403
        assert len([c for c in wire.calls if c[0] == "POST"]) == 1
        with pytest.raises(LoupeError, match="No project 'nope'"):
            lp.datasets("nope")
    assert Dataset.objects.count() == 0


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is optional")
def test_a_dataframe_is_written_as_its_records_are(tmp_path):
    import pandas

    records, embeddings, probs = make_data(30)
    write_parquet(tmp_path / "records.parquet", records, embeddings=embeddings, probs=probs)
    frame = pandas.DataFrame(records)  # missing labels become None, meta_batch int64
    write_parquet(tmp_path / "frame.parquet", frame, embeddings=embeddings, probs=probs)

    from_records = pq.read_table(tmp_path / "records.parquet")
    from_frame = pq.read_table(tmp_path / "frame.parquet")
    assert from_frame.schema == from_records.schema
    assert from_frame.to_pylist() == from_records.to_pylist()


def test_log_model_run_stores_epochs_and_metrics_and_refuses_unknown_ids(
    loupe, wire, celery_worker_process
):
    records, _, _ = make_data(40)
    logged = loupe.log_dataset("cats-dogs", "runs", records, labels=LABELS, poll=0.2)
    rng = np.random.default_rng(3)
    ids = [r["id"] for r in records[:30]]
    p_cat = rng.uniform(0.05, 0.95, size=(3, 30))
    probs = np.stack([p_cat, 1 - p_cat], axis=-1)  # final, then epochs 1 and 2
    embeddings = rng.normal(size=(30, 6))

    def fault(session, real, method, url, kwargs, n):
        if method == "POST" and url.endswith("/model-runs/") and not wire.faulted:
            wire.faulted = True  # a proxy answers 503 once: safe to send again, body and all
            return fake_response(503, {"detail": "Try again."}, url)
        return None

    wire.faulted = False
    wire.fault = fault
    result = loupe.log_model_run(
        logged["dataset_id"],
        "resnet fold 1",
        ids,
        probs[0],
        epoch_probs=probs[1:],
        embeddings=embeddings,
        embedding_space="resnet",
        metrics={"test": {"accuracy": 0.91}},
        poll=0.2,
        wait_timeout=60,
    )

    run = ModelRun.objects.get(pk=result["model_run_id"])
    assert (run.name, run.epochs, run.classes) == ("resnet fold 1", 2, LABELS)
    assert run.metrics["test"] == {"accuracy": 0.91} and "all" in run.metrics["computed"]
    got = {
        (p.sample.external_id, p.epoch): np.asarray(p.probs)
        for p in Prediction.objects.filter(run=run).select_related("sample")
    }
    assert len(got) == 90
    np.testing.assert_allclose(got[("s7", 0)], probs[0, 7], rtol=1e-6)
    np.testing.assert_allclose(got[("s7", 2)], probs[2, 7], rtol=1e-6)
    space = Embedding.objects.filter(space_id=result["embedding_space_id"])
    assert space.count() == 30
    posts = [c for c in wire.calls if c[0] == "POST" and c[1].endswith("/model-runs/")]
    assert [status for *_, status in posts] == [503, 202]

    before = state()
    with pytest.raises(ImportRefused) as refused:
        loupe.log_model_run(
            logged["dataset_id"], "bad", ["s1", "nope"], probs[0, :2], poll=0.2, wait_timeout=60
        )
    assert [(p["row"], p["column"]) for p in refused.value.problems] == [(2, "id")]
    assert "nope" in str(refused.value)
    assert state() == before


def test_a_model_run_is_not_sent_twice_when_the_server_may_have_acted(wire):
    answers = iter(
        [
            fake_response(500, {"detail": "Server error."}, "http://loupe.invalid/"),
            requests.ConnectionError("connection reset after the body was sent"),
        ]
    )

    def fault(session, real, method, url, kwargs, n):
        kwargs["body"].read()  # the body goes out
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    wire.fault = fault
    with Loupe("http://loupe.invalid", "key", backoff=0.01) as lp:
        with pytest.raises(LoupeError) as error:
            lp.log_model_run(1, "run", ["s1"], [[0.5, 0.5]])
        assert error.value.status == 500
        with pytest.raises(LoupeError, match="connection reset"):
            lp.log_model_run(1, "run", ["s1"], [[0.5, 0.5]])
    assert [c[3] for c in wire.calls] == [500, None]


def test_samples_follow_a_query_and_tag_them(loupe, world):
    dataset, _run, rows = world
    query = {"field": "margin", "op": "<", "value": 0.5}
    found = list(loupe.samples(dataset.pk, q=query, ordering="margin"))
    want = sorted(
        (
            r
            for r in rows
            if r["score"] and r["score"]["margin"] is not None and r["score"]["margin"] < 0.5
        ),
        key=lambda r: (r["score"]["margin"], r["id"]),
    )
    assert [s["id"] for s in found] == [r["id"] for r in want]
    assert found[0]["scores"]["margin"] == want[0]["score"]["margin"]
    assert loupe.tag(dataset.pk, "low margin", q=query) == len(want)
    assert loupe.tag(dataset.pk, "low margin", q=query) == 0  # a retry changes nothing
    tagged = list(
        loupe.samples(dataset.pk, q={"field": "tags", "op": "contains", "value": "low margin"})
    )
    assert {s["id"] for s in tagged} == {r["id"] for r in want}
    with pytest.raises(LoupeError) as error:
        list(loupe.samples(dataset.pk, q={"field": "password", "op": "=", "value": "x"}))
    assert error.value.status == 400 and "unknown field" in str(error.value)
