"""Production monitoring against the real database: appending production samples (all or
nothing), the windowed drift checks, their alerts, the sweep and the task on a real worker."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.utils import timezone

from apps.datasets.models import (
    Dataset,
    DatasetVersion,
    Embedding,
    EmbeddingSpace,
    ModelRun,
    Prediction,
    Sample,
)
from apps.monitoring.models import DriftCheck, MonitoringPolicy
from apps.monitoring.services import drift as monitoring
from apps.monitoring.services.production import (
    PRODUCTION_MAX_ROWS,
    ProductionRefused,
    production_append,
)
from apps.review.models import Activity, Notification

pytestmark = pytest.mark.django_db(transaction=True)

DIM = 16
LABELS = ["cat", "dog"]
NOW = datetime(2025, 11, 10, 6, 30, tzinfo=UTC)  # checks see Nov 7, 8 and 9 as complete days
DAY = timedelta(days=1)


def _centres() -> np.ndarray:
    base = np.random.default_rng(99)
    return base.standard_normal((4, DIM)) + 3.0 * np.eye(4, DIM)


def draw(rng, n: int, *, shifted: bool = False) -> np.ndarray:
    """Rows of the training distribution; shifted: 40% from a region training never saw."""
    centres = _centres()
    rows = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, DIM))
    if shifted:
        k = int(0.4 * n)
        rows[:k] = -3.0 * np.eye(DIM)[5] + np.ones(DIM) + rng.standard_normal((k, DIM))
    return rows.astype(np.float32)


def monitored(team, *, name: str = "monitored", n_train: int = 600, seed: int = 0) -> Dataset:
    """A text dataset with a version, an embedding space, a model run and training vectors."""
    dataset = Dataset.objects.create(project=team.project, name=name, labels=LABELS)
    DatasetVersion.objects.create(dataset=dataset, number=1, message="Import")
    space = EmbeddingSpace.objects.create(dataset=dataset, name="default", dimension=DIM)
    ModelRun.objects.create(dataset=dataset, name="model", classes=LABELS)
    vectors = draw(np.random.default_rng(seed), n_train)
    samples = Sample.objects.bulk_create(
        Sample(
            dataset=dataset,
            external_id=f"t{i}",
            split="train",
            label=LABELS[i % 2],
            first_label=LABELS[i % 2],
            text=f"training message {i}",
        )
        for i in range(n_train)
    )
    Embedding.objects.bulk_create(
        Embedding(space=space, sample=s, vector=v) for s, v in zip(samples, vectors, strict=True)
    )
    return dataset


def rows_of_day(day: datetime, n: int, *, seed: int, shifted: bool = False, prefix: str = ""):
    rng = np.random.default_rng(seed)
    vectors = draw(rng, n, shifted=shifted)
    p = rng.uniform(0.05, 0.95, n)
    return [
        {
            "id": f"{prefix or day:%Y%m%d}-{i}" if not prefix else f"{prefix}-{i}",
            "text": f"production message {i}",
            "embedding": vectors[i].tolist(),
            "probabilities": {"cat": float(p[i]), "dog": float(1 - p[i])},
            "timestamp": (day + timedelta(seconds=int(i * 86_000 / n))).isoformat(),
            "metadata": {"source": "app"},
        }
        for i in range(n)
    ]


def state() -> dict:
    return {
        "samples": Sample.objects.count(),
        "embeddings": Embedding.objects.count(),
        "predictions": Prediction.objects.count(),
    }


# --- Appending --------------------------------------------------------------------------------


def test_append_writes_production_samples_with_vectors_and_probabilities(team):
    dataset = monitored(team, n_train=20)
    run = ModelRun.objects.create(dataset=dataset, name="newest", classes=LABELS)
    rows = rows_of_day(NOW - DAY, 3, seed=1)
    rows[1]["probabilities"] = [0.25, 0.75]  # a list in the label schema's order
    rows[2].pop("timestamp")
    rows[2].pop("probabilities")
    before = timezone.now()
    result = production_append(dataset=dataset, rows=rows, by=team.user("scientist"))
    assert result["appended"] == 3 and result["embeddings"] == 3 and result["predictions"] == 2
    assert result["version"] == 1 and result["model_run"] == run.pk
    assert result["embedding_space"] == "default"
    added = {s.external_id: s for s in Sample.objects.filter(dataset=dataset, split="production")}
    assert set(added) == {r["id"] for r in rows}
    first = added[rows[0]["id"]]
    assert first.label is None and first.first_label is None and first.active
    assert first.added_in == 1 and first.metadata == {"source": "app"}
    assert first.observed_at == datetime.fromisoformat(rows[0]["timestamp"])
    assert before <= added[rows[2]["id"]].observed_at <= timezone.now()  # default: now
    vector = Embedding.objects.get(sample=first).vector
    assert np.allclose(vector, rows[0]["embedding"], atol=1e-6)
    probs = {p.sample_id: list(p.probs) for p in Prediction.objects.filter(run=run)}
    assert probs[added[rows[1]["id"]].pk] == pytest.approx([0.25, 0.75])
    assert added[rows[2]["id"]].pk not in probs
    assert DatasetVersion.objects.filter(dataset=dataset).count() == 1  # no version of its own


def _valid(dataset) -> list[dict]:
    return rows_of_day(NOW - DAY, 4, seed=2)


BAD_ROWS = {
    "embedding width": (lambda rows: rows[1].update(embedding=[0.1] * 5), 2, "embedding"),
    "embedding not numbers": (lambda rows: rows[1].update(embedding=["a"] * DIM), 2, "embedding"),
    "probabilities sum": (
        lambda rows: rows[2].update(probabilities={"cat": 0.7, "dog": 0.7}),
        3,
        "probabilities",
    ),
    "unknown class": (
        lambda rows: rows[0].update(probabilities={"cat": 0.5, "bird": 0.5}),
        1,
        "probabilities",
    ),
    "list too short": (lambda rows: rows[0].update(probabilities=[1.0]), 1, "probabilities"),
    "bad timestamp": (lambda rows: rows[3].update(timestamp="yesterday"), 4, "timestamp"),
    "naive timestamp": (
        lambda rows: rows[3].update(timestamp="2025-11-03T10:00:00"),
        4,
        "timestamp",
    ),
    "far future": (lambda rows: rows[3].update(timestamp="2999-01-01T00:00:00Z"), 4, "timestamp"),
    "duplicate id": (lambda rows: rows[2].update(id=rows[0]["id"]), 3, "id"),
    "missing id": (lambda rows: rows[1].pop("id"), 2, "id"),
    "missing text": (lambda rows: rows[1].pop("text"), 2, "text"),
    "unknown field": (lambda rows: rows[0].update(label="cat"), 1, "label"),
    "metadata not an object": (lambda rows: rows[0].update(metadata=[1, 2]), 1, "metadata"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_a_bad_row_refuses_the_whole_batch_naming_row_and_field(team, case):
    dataset = monitored(team, n_train=20)
    change, row, field = BAD_ROWS[case]
    rows = _valid(dataset)
    change(rows)
    before = state()
    with pytest.raises(ProductionRefused) as refused:
        production_append(dataset=dataset, rows=rows, by=team.user("owner"))
    problem = refused.value.problems[0]
    assert (problem["row"], problem["field"]) == (row, field), refused.value.problems
    assert problem["message"]
    assert refused.value.problem_count == len(refused.value.problems)
    assert "nothing was written" in refused.value.messages[0]
    assert state() == before


def test_every_problem_is_listed_in_row_order(team):
    dataset = monitored(team, n_train=20)
    rows = _valid(dataset)
    rows[3]["embedding"] = [1.0, 2.0]
    rows[0]["timestamp"] = "not a time"
    rows[1]["probabilities"] = {"cat": 0.9, "dog": 0.3}
    with pytest.raises(ProductionRefused) as refused:
        production_append(dataset=dataset, rows=rows, by=team.user("owner"))
    assert [(p["row"], p["field"]) for p in refused.value.problems] == [
        (1, "timestamp"),
        (2, "probabilities"),
        (4, "embedding"),
    ]


def test_an_id_already_in_the_dataset_is_refused(team):
    dataset = monitored(team, n_train=20)
    rows = _valid(dataset)
    production_append(dataset=dataset, rows=rows[:2], by=team.user("owner"))
    before = state()
    with pytest.raises(ProductionRefused) as refused:
        production_append(dataset=dataset, rows=rows[1:], by=team.user("owner"))
    assert [(p["row"], p["field"], p["code"]) for p in refused.value.problems] == [
        (1, "id", "exists")
    ]
    training = [{**rows[3], "id": "t5"}]  # a training sample's id
    with pytest.raises(ProductionRefused):
        production_append(dataset=dataset, rows=training, by=team.user("owner"))
    assert state() == before


def test_more_rows_than_the_cap_are_refused(team):
    dataset = monitored(team, n_train=20)
    rows = [{"id": f"x{i}", "text": "hi"} for i in range(PRODUCTION_MAX_ROWS + 1)]
    before = state()
    with pytest.raises(ProductionRefused) as refused:
        production_append(dataset=dataset, rows=rows, by=team.user("owner"))
    assert refused.value.problems[0]["field"] == "samples"
    assert f"{PRODUCTION_MAX_ROWS:,}" in refused.value.problems[0]["message"]
    assert state() == before


def test_probabilities_need_a_model_run_and_a_named_space_must_exist(team):
    dataset = monitored(team, n_train=20)
    ModelRun.objects.filter(dataset=dataset).delete()
    with pytest.raises(ProductionRefused) as refused:
        production_append(dataset=dataset, rows=_valid(dataset), by=team.user("owner"))
    assert {p["field"] for p in refused.value.problems} == {"probabilities"}
    assert "log a model run first" in refused.value.problems[0]["message"]
    rows = [{k: v for k, v in r.items() if k != "probabilities"} for r in _valid(dataset)]
    with pytest.raises(ProductionRefused) as refused:
        production_append(dataset=dataset, rows=rows, by=team.user("owner"), embedding_space="x")
    assert refused.value.problems[0]["field"] == "embedding_space"
    assert "default" in refused.value.problems[0]["message"]


def test_the_api_appends_and_refuses_with_the_problems(team, api_as):
    dataset = monitored(team, n_train=20)
    client = api_as(team.user("scientist"))
    url = f"/api/datasets/{dataset.pk}/production/"
    rows = _valid(dataset)
    response = client.post(url, {"samples": rows}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["appended"] == 4 and response.json()["predictions"] == 4
    bad = rows_of_day(NOW - DAY, 2, seed=3, prefix="other")
    bad[1]["embedding"] = [0.0]
    response = client.post(url, {"samples": bad}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["problem_count"] == 1
    assert body["problems"][0] | {"message": ""} == {
        "row": 2,
        "field": "embedding",
        "message": "",
        "code": "invalid",
    }
    assert "has 1 values" in body["problems"][0]["message"]
    summary = client.get(url).json()
    assert summary["count"] == 4 and summary["timed"] == 4
    assert client.post(url, {"samples": "nope"}, format="json").status_code == 400


def test_text_without_an_embedding_is_embedded_in_a_space_loupe_computed(team):
    from apps.datasets.services import embeddings_compute

    dataset = Dataset.objects.create(project=team.project, name="texts", labels=LABELS)
    DatasetVersion.objects.create(dataset=dataset, number=1, message="Import")
    words = ["refund my order", "the parcel is late", "wifi keeps dropping", "reset my password"]
    Sample.objects.bulk_create(
        Sample(dataset=dataset, external_id=f"t{i}", text=f"{words[i % 4]} please {i}")
        for i in range(40)
    )
    space = embeddings_compute(dataset_id=dataset.pk, method="tfidf-svd")
    result = production_append(
        dataset=dataset,
        rows=[{"id": "p1", "text": "my parcel is late"}, {"id": "p2", "text": "zzz qqq"}],
        by=team.user("owner"),
    )
    assert result["embeddings"] == result["embeddings_computed"] == 1  # no known word: none
    assert result["embedding_space"] == space.name
    assert Embedding.objects.filter(space=space, sample__external_id="p1").exists()


# --- Drift checks ---------------------------------------------------------------------------


@pytest.fixture
def three_days(team):
    """Nov 7 and 9 from the training distribution, Nov 8 shifted; and part of Nov 10."""
    dataset = monitored(team)
    owner = team.user("owner")
    for offset, shifted in ((3, False), (2, True), (1, False)):
        day = datetime(2025, 11, 10, tzinfo=UTC) - offset * DAY
        production_append(
            dataset=dataset, rows=rows_of_day(day, 80, seed=offset, shifted=shifted), by=owner
        )
    today = rows_of_day(datetime(2025, 11, 10, tzinfo=UTC), 40, seed=9, shifted=True)
    production_append(dataset=dataset, rows=today, by=owner)
    return dataset


@pytest.fixture
def emitted(monkeypatch):
    """Webhook events the checks emit."""
    events = []

    def record(*, project, event, payload):
        events.append((project, event, payload))
        return 0

    monkeypatch.setattr("apps.webhooks.services.event_emit", record)
    return events


def test_a_shifted_day_alerts_and_unshifted_days_do_not(team, three_days, emitted):
    dataset = three_days
    checks = monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW)
    by_day = {c.window_start.date().isoformat(): c for c in checks}
    assert set(by_day) == {"2025-11-07", "2025-11-08", "2025-11-09"}  # not the running day
    for day in ("2025-11-07", "2025-11-09"):
        calm = by_day[day]
        assert not calm.alert and calm.reasons == [] and not calm.skipped
        assert abs(calm.auc - 0.5) < 0.15 and calm.p_value > 0.01
        assert calm.share_out_of_coverage < 0.15
    shifted = by_day["2025-11-08"]
    assert shifted.alert
    assert shifted.window_end - shifted.window_start == DAY
    assert shifted.n_production == 80 and shifted.n_train == 600
    signals = {r["signal"] for r in shifted.reasons}
    assert {"test", "coverage"} <= signals
    assert shifted.p_value < 0.01 and shifted.auc > 0.6 and shifted.share_out_of_coverage > 0.3
    assert shifted.clusters and shifted.clusters[0]["examples"]
    grown = next(c for c in shifted.clusters if c["n_production"])
    assert grown["terms"] and grown["production_terms"]  # what sets each side apart
    assert shifted.thresholds["p_value"] == 0.01

    # Owners, managers and data scientists hear of it; nobody else.
    notified = Notification.objects.filter(kind=Notification.Kind.DRIFT)
    assert {n.user.username for n in notified} == {"owner1", "manager1", "scientist1"}
    note = notified.first()
    assert "2025-11-08" in note.text and dataset.name in note.text
    assert note.url == f"/datasets/{dataset.pk}/drift/"
    assert Activity.objects.filter(project=team.project, verb__contains="drift alert").count() == 1
    ((project, event, payload),) = emitted
    assert project == team.project and event == "drift.alert"
    assert payload["dataset"] == {"id": dataset.pk, "name": dataset.name}
    assert payload["window_start"] == "2025-11-08T00:00:00+00:00"
    assert payload["reasons"] == shifted.reasons


def test_a_window_is_checked_once(team, three_days, emitted):
    first = monitoring.drift_windows_check(dataset_id=three_days.pk, now=NOW)
    assert len(first) == 3
    assert monitoring.drift_windows_check(dataset_id=three_days.pk, now=NOW) == []
    # A late sample for a checked day changes nothing; the day after, one more window is due.
    late = rows_of_day(datetime(2025, 11, 8, tzinfo=UTC), 5, seed=11, prefix="late")
    production_append(dataset=three_days, rows=late, by=team.user("owner"))
    assert monitoring.drift_windows_check(dataset_id=three_days.pk, now=NOW) == []
    later = monitoring.drift_windows_check(dataset_id=three_days.pk, now=NOW + DAY)
    assert [c.window_start.date().isoformat() for c in later] == ["2025-11-10"]
    assert later[0].n_production == 40
    assert DriftCheck.objects.filter(dataset=three_days).count() == 4
    assert Notification.objects.filter(kind="drift").count() == 3 * 2  # two alerting days
    assert len(emitted) == 2


def test_a_small_window_is_kept_as_skipped_and_checked_once_it_has_enough(team, emitted):
    dataset = monitored(team)
    day = datetime(2025, 11, 9, tzinfo=UTC)
    production_append(
        dataset=dataset, rows=rows_of_day(day, 12, seed=4, prefix="a"), by=team.user("owner")
    )
    (check,) = monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW)
    assert check.skipped == "12 samples, fewer than the 30 needed"
    assert check.auc is None and not check.alert and check.n_production == 12
    assert monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW) == []  # same again
    production_append(
        dataset=dataset, rows=rows_of_day(day, 40, seed=5, prefix="b"), by=team.user("owner")
    )
    (again,) = monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW)
    assert again.pk == check.pk and again.skipped == "" and again.n_production == 52
    assert again.auc is not None and not again.alert


def test_only_the_last_30_windows_are_looked_at(team, emitted):
    dataset = monitored(team)
    old = datetime(2025, 10, 1, tzinfo=UTC)
    production_append(
        dataset=dataset, rows=rows_of_day(old, 40, seed=6, prefix="old"), by=team.user("owner")
    )
    assert monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW) == []


def test_the_policy_sets_window_length_and_thresholds(team, three_days, emitted):
    monitoring.monitoring_policy_update(
        project=team.project,
        by=team.user("owner"),
        window_hours=12,
        p_value_threshold=1e-12,
        coverage_threshold=0.9,
        cluster_shift_threshold=0.9,
        new_kind_threshold=0.99,
        min_samples=30,
    )
    checks = monitoring.drift_windows_check(dataset_id=three_days.pk, now=NOW)
    assert {c.window_end - c.window_start for c in checks} == {timedelta(hours=12)}
    # The shifted halves are 40% a new kind, far beyond chance, yet short of 99% of traffic.
    assert (
        max(c.new_kind["p_value"] for c in checks)
        > 1e-12
        > min(c.new_kind["p_value"] for c in checks)
    )
    assert len(checks) == 6  # three days of two halves
    assert not any(c.alert for c in checks)  # nothing passes such thresholds
    assert Notification.objects.count() == 0


@pytest.mark.parametrize(
    "field,value",
    [
        ("window_hours", 0),
        ("window_hours", 1.5),
        ("p_value_threshold", 0),
        ("p_value_threshold", 0.9),
        ("coverage_threshold", 0.01),
        ("cluster_shift_threshold", 1.5),
        ("min_samples", 3),
    ],
)
def test_a_policy_out_of_range_is_refused(team, field, value):
    good = {
        "window_hours": 24,
        "p_value_threshold": 0.01,
        "coverage_threshold": 0.15,
        "cluster_shift_threshold": 0.1,
        "min_samples": 30,
    }
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        monitoring.monitoring_policy_update(
            project=team.project, by=team.user("owner"), **{**good, field: value}
        )
    assert field in error.value.message_dict
    assert not MonitoringPolicy.objects.filter(project=team.project).exclude(window_hours=24)


def test_the_sweep_checks_every_dataset_and_one_failing_does_not_stop_the_others(
    team, monkeypatch, emitted
):
    first, second = monitored(team, name="first"), monitored(team, name="second", seed=1)
    day = datetime(2025, 11, 9, tzinfo=UTC)
    for dataset in (first, second):
        production_append(
            dataset=dataset,
            rows=rows_of_day(day, 40, seed=7, prefix=f"d{dataset.pk}"),
            by=team.user("owner"),
        )
    Dataset.objects.create(project=team.project, name="no production", labels=LABELS)
    real = monitoring.drift_windows_check

    def flaky(*, dataset_id, now=None):
        if dataset_id == first.pk:
            raise RuntimeError("boom")
        return real(dataset_id=dataset_id, now=now)

    monkeypatch.setattr(monitoring, "drift_windows_check", flaky)
    result = monitoring.drift_checks_sweep(now=NOW)
    assert result == {"datasets": 2, "checks": 1, "alerts": 0, "failed": 1}
    assert DriftCheck.objects.filter(dataset=second).count() == 1


def test_the_check_task_runs_on_a_real_worker(team, celery_worker_process, emitted):
    """Check now: the task runs in a worker process, on yesterday and the day before."""
    dataset = monitored(team)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    owner = team.user("owner")
    production_append(
        dataset=dataset, rows=rows_of_day(today - 2 * DAY, 60, seed=1, prefix="calm"), by=owner
    )
    production_append(
        dataset=dataset,
        rows=rows_of_day(today - DAY, 60, seed=2, shifted=True, prefix="odd"),
        by=owner,
    )
    monitoring.drift_check_enqueue(dataset=dataset)  # after commit: autocommit here
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and DriftCheck.objects.filter(dataset=dataset).count() < 2:
        time.sleep(0.2)
    checks = {c.window_start: c for c in DriftCheck.objects.filter(dataset=dataset)}
    assert set(checks) == {today - 2 * DAY, today - DAY}
    assert checks[today - DAY].alert and not checks[today - 2 * DAY].alert
    # The worker sent the notifications (its own process: the webhook stub is not there).
    assert Notification.objects.filter(kind="drift").count() == 3


ODD_ROWS = {
    "embedding beyond float32": (lambda row: row.update(embedding=[1e39] * DIM), "embedding"),
    "embedding integer beyond any float": (
        lambda row: row.update(embedding=[10**400] * DIM),
        "embedding",
    ),
    "probability integer beyond any float": (
        lambda row: row.update(probabilities=[10**400, 0]),
        "probabilities",
    ),
    "feature integer beyond any float": (lambda row: row.update(fields={"x": 10**400}), "fields"),
    "NUL in text": (lambda row: row.update(text="hi\x00there"), "text"),
    "NUL in id": (lambda row: row.update(id="a\x00"), "id"),
    "id too long": (lambda row: row.update(id="x" * 501), "id"),
    "NUL in a metadata key": (lambda row: row.update(metadata={"k\x00": "v"}), "metadata"),
    "lone surrogate in metadata": (lambda row: row.update(metadata={"k": "\ud800"}), "metadata"),
    "timestamp out of range in UTC": (
        lambda row: row.update(timestamp="0001-01-01T00:00:00+14:00"),
        "timestamp",
    ),
    "image climbing out with ..": (
        lambda row: row.update(image="../../imports/1/1/x.csv"),
        "image",
    ),
    "image with an absolute path": (lambda row: row.update(image="/etc/passwd"), "image"),
    "image with backslashes": (lambda row: row.update(image="a\\..\\..\\x.png"), "image"),
    "metadata nested thousands deep": (lambda row: row.update(metadata=nested(5000)), "metadata"),
    "metadata nested past the limit": (lambda row: row.update(metadata=nested(40)), "metadata"),
}


def nested(depth: int) -> dict:
    top = cur = {}
    for _ in range(depth - 1):
        cur["a"] = {}
        cur = cur["a"]
    return top


@pytest.mark.parametrize("case", list(ODD_ROWS))
def test_values_postgresql_would_refuse_are_refused_by_row_not_a_server_error(team, case):
    dataset = monitored(team, n_train=20)
    change, field = ODD_ROWS[case]
    rows = _valid(dataset)
    change(rows[1])
    before = state()
    with pytest.raises(ProductionRefused) as refused:
        production_append(dataset=dataset, rows=rows, by=team.user("owner"))
    assert [(p["row"], p["field"]) for p in refused.value.problems] == [(2, field)]
    assert state() == before


def test_a_timestamp_with_an_offset_postgresql_does_not_take_is_kept_in_utc(team):
    dataset = monitored(team, n_train=20)
    rows = _valid(dataset)[:1]
    rows[0]["timestamp"] = "2025-11-03T00:00:00+23:59"
    production_append(dataset=dataset, rows=rows, by=team.user("owner"))
    seen = Sample.objects.get(dataset=dataset, external_id=rows[0]["id"]).observed_at
    assert seen == datetime(2025, 11, 2, 0, 1, tzinfo=UTC)


def test_the_api_refuses_rows_that_are_not_objects_by_row_number(team, api_as):
    dataset = monitored(team, n_train=20)
    url = f"/api/datasets/{dataset.pk}/production/"
    rows = [{"id": "a", "text": "hi"}, None, 7]
    response = api_as(team.user("owner")).post(url, {"samples": rows}, format="json")
    assert response.status_code == 400
    assert [(p["row"], p["field"]) for p in response.json()["problems"]] == [(2, "-"), (3, "-")]
    assert not Sample.objects.filter(dataset=dataset, split="production").exists()


def test_the_api_refuses_a_body_nested_thousands_deep_with_a_400(team, api_as):
    dataset = monitored(team, n_train=20)
    url = f"/api/datasets/{dataset.pk}/production/"
    deep = '{"a": ' * 5000 + "{}" + "}" * 5000  # json.dumps would recurse too deep to write it
    body = '{"samples": [{"id": "a", "text": "hi", "metadata": ' + deep + "}]}"
    response = api_as(team.user("owner")).post(url, body, content_type="application/json")
    assert response.status_code == 400
    assert "nests deeper than" in json.dumps(response.json())
    assert not Sample.objects.filter(dataset=dataset, split="production").exists()


# --- One numbering of clusters ----------------------------------------------------------------


def _scored_by_nearest_centre(dataset, *, leave_out: int = 0):
    """A finished scoring run whose clusters are 40 + the nearest of draw()'s centres, for every
    training sample but the last `leave_out` (they arrived after the run)."""
    from apps.quality.models import RunStatus, SampleScore, ScoringRun

    run = ScoringRun.objects.create(dataset=dataset, version=1, status=RunStatus.DONE)
    centres = _centres()
    train = list(
        Embedding.objects.filter(sample__dataset=dataset, sample__split="train")
        .order_by("sample_id")
        .values_list("sample_id", "vector")
    )
    kept = train[: len(train) - leave_out]
    SampleScore.objects.bulk_create(
        SampleScore(
            run=run,
            sample_id=pk,
            cluster=40 + int(np.argmin(((centres - np.asarray(v)) ** 2).sum(axis=1))),
        )
        for pk, v in kept
    )
    return run


def test_drift_numbers_clusters_as_the_scoring_run_does(team, three_days, web_as, api_as):
    dataset = three_days
    run = _scored_by_nearest_centre(dataset, leave_out=100)
    checks = {
        c.window_start.date().isoformat(): c
        for c in monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW)
    }
    shifted = checks["2025-11-08"]
    assert shifted.scoring_run_id == run.pk
    assert shifted.n_train == 500  # the training that arrived after the run is left out
    assert {c["cluster"] for c in shifted.clusters} <= {40, 41, 42, 43}
    for reason in shifted.reasons:
        if reason["signal"] == "cluster_shift":
            assert reason["scoring_run"] == run.pk
            assert f"of scoring run {run.pk}" in monitoring._describe(reason)
    # The page names them clusters and links each to the run's cluster on the sample table,
    # the same query the health page's cluster links use.
    html = web_as(team.user("viewer")).get(f"/datasets/{dataset.pk}/drift/?window={shifted.pk}")
    page = html.content.decode()
    section = page[page.index('id="clusters"') :].split("</section>")[0]
    assert f"scoring run {run.pk}</a>" in section and "region" not in section
    assert f'href="/datasets/{dataset.pk}/health/#clusters"' in section
    top = shifted.clusters[0]["cluster"]
    assert "%22field%22%3A+%22cluster%22" in section and f"run={run.pk}" in section
    assert f">{top}</a>" in section
    # And the API says which run the numbers belong to.
    api = api_as(team.user("viewer")).get(f"/api/datasets/{dataset.pk}/drift-checks/")
    assert api.json()["results"][0]["scoring_run"] == run.pk


def test_without_a_scoring_run_drift_calls_its_own_groups_regions(team, three_days, web_as):
    dataset = three_days
    checks = monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW)
    shifted = next(c for c in checks if c.window_start.date().isoformat() == "2025-11-08")
    assert shifted.scoring_run_id is None and shifted.n_train == 600
    page = web_as(team.user("viewer")).get(f"/datasets/{dataset.pk}/drift/?window={shifted.pk}")
    section = page.content.decode().split('id="clusters"')[1].split("</section>")[0]
    assert "<th>Region</th>" in section and "region " in section
    assert "%22cluster%22" not in section  # no link to a run's clusters
    assert monitoring._describe(
        {"signal": "cluster_shift", "value": 0.2, "threshold": 0.1, "cluster": 3}
    ).startswith("region 3 share")


def test_windows_wait_for_a_first_scoring_run_under_way_then_use_its_clusters(
    team, three_days, django_capture_on_commit_callbacks, monkeypatch
):
    from apps.core import events
    from apps.quality.models import RunStatus, ScoringRun

    dataset = three_days
    run = ScoringRun.objects.create(dataset=dataset, version=1, status=RunStatus.RUNNING)
    assert monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW) == []
    assert not DriftCheck.objects.filter(dataset=dataset).exists()
    # The run ends: a check is queued, and the windows are numbered by its clusters.
    run.delete()
    run = _scored_by_nearest_centre(dataset)
    queued = []
    monkeypatch.setattr(monitoring, "task_enqueue", lambda name, *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        events.record(
            events.Event(
                "scoring.finished",
                project=dataset.project,
                payload={"run": run.pk, "dataset": {"id": dataset.pk, "name": dataset.name}},
            )
        )
    assert queued == [(dataset.pk,)]
    checks = monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW)
    assert len(checks) == 3 and {c.scoring_run_id for c in checks} == {run.pk}
