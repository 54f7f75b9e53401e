"""The Python client's append_production against the live test server: batches, refusals
numbered within the whole call, and a batch whose answer was lost counted once."""

# ruff: noqa: F811 - the live-server fixtures of test_client are imported by name

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import requests
from loupe_client import Loupe, LoupeError, ProductionRefused

from apps.datasets.models import Embedding, Prediction, Sample
from tests.client.test_client import Wire, key, live_url, loupe  # noqa: F401 - fixtures
from tests.monitoring.test_monitoring import draw, monitored

pytestmark = pytest.mark.django_db(transaction=True)

SEEN = datetime(2025, 11, 8, tzinfo=UTC)


def records(n: int, *, prefix: str = "req"):
    rng = np.random.default_rng(3)
    p = rng.uniform(0.1, 0.9, n)
    return (
        [
            {"id": f"{prefix}-{i}", "text": f"message {i}", "meta_app": "2.4", "metadata": {"n": i}}
            for i in range(n)
        ],
        draw(rng, n),
        np.column_stack([p, 1 - p]),
        [SEEN + timedelta(minutes=i) for i in range(n)],
    )


def test_append_production_sends_batches(loupe, team):
    dataset = monitored(team, n_train=20)
    rows, embeddings, probabilities, seen = records(250)
    heard = []
    result = loupe.append_production(
        dataset.pk,
        rows,
        embeddings=embeddings,
        probabilities=probabilities,
        timestamps=seen,
        batch_size=100,
        progress=lambda stage, fraction: heard.append((stage, round(fraction, 2))),
    )
    assert result == {"appended": 250, "embeddings": 250, "predictions": 250, "batches": 3}
    assert heard == [("append", 0.0), ("append", 0.4), ("append", 0.8), ("append", 1.0)]
    added = Sample.objects.filter(dataset=dataset, split="production").order_by("pk")
    assert added.count() == 250
    last = added.get(external_id="req-249")
    assert last.observed_at == SEEN + timedelta(minutes=249)
    assert last.metadata == {"n": 249, "app": "2.4"} and last.label is None
    vector = Embedding.objects.get(sample=last).vector
    assert np.allclose(vector, embeddings[249], atol=1e-5)
    assert Prediction.objects.filter(sample_id__in=added.values("pk")).count() == 250


def test_a_refused_batch_names_rows_of_the_whole_call_and_keeps_earlier_batches(loupe, team):
    dataset = monitored(team, n_train=20)
    rows, embeddings, probabilities, seen = records(30)
    probabilities[25] = [0.9, 0.9]
    with pytest.raises(ProductionRefused) as refused:
        loupe.append_production(
            dataset.pk,
            rows,
            embeddings=embeddings,
            probabilities=probabilities,
            timestamps=seen,
            batch_size=10,
        )
    error = refused.value
    assert error.status == 400 and error.appended_before == 20
    assert error.problem_count == 1
    assert (error.problems[0]["row"], error.problems[0]["field"]) == (26, "probabilities")
    assert "row 26, probabilities: probabilities sum to 1.8000, not 1" in str(error)
    assert Sample.objects.filter(dataset=dataset, split="production").count() == 20


def test_a_batch_whose_answer_was_lost_is_counted_once(live_url, key, team, monkeypatch):
    dataset = monitored(team, n_train=20)
    rows, embeddings, _probabilities, seen = records(12)
    wire = Wire(monkeypatch)

    def lose_first_answer(session, real, method, url, kwargs, n):
        if method == "POST" and "/production/" in url and n == 0:
            real(session, method, url, **kwargs).close()  # the server appended the batch...
            raise requests.ConnectionError("connection reset")  # ...but the answer is lost

    wire.fault = lose_first_answer
    with Loupe(live_url, key, backoff=0.01) as lp:
        result = lp.append_production(dataset.pk, rows, embeddings=embeddings, timestamps=seen)
    assert result["appended"] == 12 and result["batches"] == 1
    assert [c[3] for c in wire.calls] == [None, 400]  # the repeat was refused: already there
    assert Sample.objects.filter(dataset=dataset, split="production").count() == 12


def test_bad_arguments_fail_before_anything_is_sent(loupe, team):
    dataset = monitored(team, n_train=20)
    rows, embeddings, _probabilities, seen = records(3)
    with pytest.raises(ValueError, match="no timezone"):
        loupe.append_production(dataset.pk, rows, timestamps=[t.replace(tzinfo=None) for t in seen])
    naive = [dict(r) for r in rows]
    naive[2]["timestamp"] = seen[2].replace(tzinfo=None)
    with pytest.raises(ValueError, match=r"records\[2\]\['timestamp'\] has no timezone"):
        loupe.append_production(dataset.pk, naive)
    with pytest.raises(ValueError, match="one row per record"):
        loupe.append_production(dataset.pk, rows, embeddings=embeddings[:2])
    with pytest.raises(ValueError, match="unlabelled"):
        loupe.append_production(dataset.pk, [{"id": "a", "text": "t", "label": "cat"}])
    assert not Sample.objects.filter(dataset=dataset, split="production").exists()


def test_a_viewer_cannot_append(live_url, team):
    from apps.accounts.services import api_token_create

    dataset = monitored(team, n_train=20)
    _token, viewer_key = api_token_create(
        user=team.user("viewer"), name="viewer", by=team.user("viewer")
    )
    with Loupe(live_url, viewer_key, backoff=0.01) as lp:
        with pytest.raises(LoupeError) as error:
            lp.append_production(dataset.pk, [{"id": "a", "text": "hello"}])
    assert error.value.status == 403
