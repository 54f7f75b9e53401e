"""The class signals of the drift check against the real database: a day whose class mix
changed alerts with the class named, a day with a new kind of data alerts with its examples,
a model run's probabilities are used when it scored training, and the page and the API show
and set them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from apps.datasets.models import (
    Dataset,
    DatasetVersion,
    Embedding,
    EmbeddingSpace,
    ModelRun,
    Prediction,
    Sample,
)
from apps.monitoring.models import MonitoringPolicy
from apps.monitoring.services import drift as monitoring
from apps.monitoring.services.production import production_append
from apps.review.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)

DIM = 16
LABELS = ["cat", "dog"]
NOW = datetime(2025, 11, 10, 6, 30, tzinfo=UTC)
DAY = timedelta(days=1)
CENTRES = np.random.default_rng(99).standard_normal((4, DIM)) + 3.0 * np.eye(4, DIM)
ELSEWHERE = -3.0 * np.eye(DIM)[5] + np.ones(DIM)


def draw(rng, n: int, *, cats: float = 0.5, new: float = 0.0):
    """Rows and labels: components 0 and 1 are cats, 2 and 3 dogs; `new` of the rows from a
    region no class covers."""
    is_cat = rng.uniform(size=n) < cats
    component = np.where(is_cat, rng.integers(0, 2, n), rng.integers(2, 4, n))
    rows = CENTRES[component] + rng.standard_normal((n, DIM))
    k = int(new * n)
    if k:
        rows[:k] = ELSEWHERE + rng.standard_normal((k, DIM))
    return rows.astype(np.float32), np.where(is_cat, "cat", "dog")


def labelled_dataset(team, *, n_train: int = 600, run_scores_training: bool = False) -> Dataset:
    dataset = Dataset.objects.create(project=team.project, name="labelled", labels=LABELS)
    DatasetVersion.objects.create(dataset=dataset, number=1, message="Import")
    space = EmbeddingSpace.objects.create(dataset=dataset, name="default", dimension=DIM)
    run = ModelRun.objects.create(dataset=dataset, name="model", classes=LABELS)
    vectors, labels = draw(np.random.default_rng(0), n_train)
    samples = Sample.objects.bulk_create(
        Sample(dataset=dataset, external_id=f"t{i}", split="train", label=y, first_label=y)
        for i, y in enumerate(labels)
    )
    Embedding.objects.bulk_create(
        Embedding(space=space, sample=s, vector=v) for s, v in zip(samples, vectors, strict=True)
    )
    if run_scores_training:
        Prediction.objects.bulk_create(
            Prediction(run=run, sample=s, probs=[0.9, 0.1] if y == "cat" else [0.1, 0.9])
            for s, y in zip(samples, labels, strict=True)
        )
    return dataset


def append_day(team, dataset, day: datetime, n: int, *, seed: int, cats=0.5, new=0.0):
    vectors, labels = draw(np.random.default_rng(seed), n, cats=cats, new=new)
    rows = [
        {
            "id": f"{day:%m%d}-{i}",
            "text": f"production message {i}",
            "embedding": vectors[i].tolist(),
            "probabilities": {"cat": 0.9, "dog": 0.1} if y == "cat" else {"cat": 0.1, "dog": 0.9},
            "timestamp": (day + timedelta(seconds=int(i * 86_000 / n))).isoformat(),
        }
        for i, y in enumerate(labels)
    ]
    production_append(dataset=dataset, rows=rows, by=team.user("owner"))


def days(team, dataset):
    """Nov 7 as training, Nov 8 with 85% cats, Nov 9 with 30% of a new kind of data."""
    base = datetime(2025, 11, 7, tzinfo=UTC)
    append_day(team, dataset, base, 200, seed=1)
    append_day(team, dataset, base + DAY, 200, seed=2, cats=0.85)
    append_day(team, dataset, base + 2 * DAY, 200, seed=3, new=0.3)
    checks = monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW)
    return {c.window_start.date().isoformat(): c for c in checks}


def test_a_changed_class_mix_and_a_new_kind_of_data_alert_by_name(team):
    dataset = labelled_dataset(team)
    by_day = days(team, dataset)
    calm = by_day["2025-11-07"]
    assert not calm.alert, calm.reasons
    assert calm.label_shift["source"] == "embeddings"
    assert calm.label_shift_p_value > 0.01 and calm.max_label_shift < 0.15
    assert calm.new_kind_share < 0.08 and calm.new_kind["nominal"] > 0

    mix = by_day["2025-11-08"]
    reason = next(r for r in mix.reasons if r["signal"] == "label_shift")
    assert reason["class"] == "cat" and reason["change"] > 0.2
    top = mix.label_shift["classes"][0]
    assert top["significant"] and top["p_value"] < 0.01 and top["examples"]
    assert mix.max_label_shift == pytest.approx(abs(top["change"]), abs=1e-4)
    assert mix.thresholds["label_shift"] == 0.15 and mix.thresholds["new_kind"] == 0.10
    assert "new_kind" not in {r["signal"] for r in mix.reasons}

    new = by_day["2025-11-09"]
    assert "new_kind" in {r["signal"] for r in new.reasons}
    # Far from every class is what counts, however sure the classifier is: most of the 30% new
    # rows are flagged, and the traffic estimate reads every row's distance.
    assert new.new_kind_share > 0.15 and new.new_kind["p_value"] < 1e-6
    assert new.new_kind["estimated_share"] == pytest.approx(0.3, abs=0.1)
    assert calm.new_kind["estimated_share"] < 0.1 and mix.new_kind["estimated_share"] < 0.1
    # The examples are the day's first rows, the ones drawn from the new region.
    assert new.new_kind["examples"]
    assert sum(int(e.split("-")[1]) < 60 for e in new.new_kind["examples"]) >= 0.7 * len(
        new.new_kind["examples"]
    )
    # Both tests are kept, and the reason names the one that spoke more strongly.
    assert new.new_kind["tail_p_value"] < 1e-6 and new.new_kind["rank_p_value"] < 0.01
    reason = next(r for r in new.reasons if r["signal"] == "new_kind")
    assert reason["test"] in {"far", "far and unsure"} and reason["value"] > 0.1
    assert len(new.new_kind["score_examples"]) == 50
    texts = [n.text for n in Notification.objects.filter(kind="drift")]
    assert any("label shift: class cat rose by" in t for t in texts)
    assert any("new kind of data (far" in t and "of the traffic" in t for t in texts)


def test_a_model_run_that_scored_training_is_used_for_the_class_signals(team):
    dataset = labelled_dataset(team, run_scores_training=True)
    by_day = days(team, dataset)
    assert by_day["2025-11-08"].label_shift["source"] == "model run model"
    reason = next(r for r in by_day["2025-11-08"].reasons if r["signal"] == "label_shift")
    assert reason["class"] == "cat"
    assert not by_day["2025-11-07"].alert


def test_unlabelled_training_skips_the_class_signals_and_says_why(team):
    dataset = labelled_dataset(team)
    Sample.objects.filter(dataset=dataset, split="train").update(label=None)
    append_day(team, dataset, datetime(2025, 11, 9, tzinfo=UTC), 100, seed=4)
    (check,) = monitoring.drift_windows_check(dataset_id=dataset.pk, now=NOW)
    assert check.auc is not None and check.label_shift_p_value is None
    assert "two classes" in check.label_shift["skipped"]


def test_the_page_shows_the_classes_rising_and_the_new_kind_with_examples(team, web_as):
    dataset = labelled_dataset(team)
    by_day = days(team, dataset)
    client = web_as(team.user("reviewer"))
    page = client.get(f"/datasets/{dataset.pk}/drift/?window={by_day['2025-11-08'].pk}")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="label-shift-classes"' in html and "▲ rising" in html and "▼ falling" in html
    assert "label shift: class cat rose by" in html  # the alert's reason in the windows table
    page = client.get(f"/datasets/{dataset.pk}/drift/?window={by_day['2025-11-09'].pk}")
    html = page.content.decode()
    assert 'id="new-kind"' in html and "belongs to no training class" in html
    assert "Show the" in html and "external_id" in html  # a link to the examples
    assert "far and unsure, by rank, p =" in html and "least like training (far and unsure)" in html


def test_the_api_reads_and_sets_the_class_thresholds(team, api_as):
    client = api_as(team.user("owner"))
    url = f"/api/projects/{team.project.pk}/monitoring/"
    body = client.get(url).json()
    assert body["label_shift_threshold"] == 0.15 and body["new_kind_threshold"] == 0.1
    base = {
        "window_hours": 24,
        "p_value_threshold": 0.01,
        "coverage_threshold": 0.15,
        "cluster_shift_threshold": 0.1,
        "min_samples": 30,
    }
    response = client.put(url, {**base, "label_shift_threshold": 0.2}, format="json")
    assert response.status_code == 200 and response.json()["label_shift_threshold"] == 0.2
    # Left out: kept.
    response = client.put(url, base, format="json")
    assert response.json()["label_shift_threshold"] == 0.2
    response = client.put(url, {**base, "new_kind_threshold": 1.5}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"new_kind_threshold"}
    policy = MonitoringPolicy.objects.get(project=team.project)
    assert policy.label_shift_threshold == 0.2 and policy.new_kind_threshold == 0.1


def test_the_form_sets_the_class_thresholds(team, web_as):
    dataset = labelled_dataset(team)
    client = web_as(team.user("owner"))
    response = client.post(
        f"/datasets/{dataset.pk}/drift/policy/",
        {
            "window_hours": "24",
            "p_value_threshold": "0.01",
            "coverage_threshold": "0.15",
            "cluster_shift_threshold": "0.1",
            "label_shift_threshold": "0.25",
            "new_kind_threshold": "0.05",
            "min_samples": "30",
        },
    )
    assert response.status_code == 302
    policy = MonitoringPolicy.objects.get(project=team.project)
    assert policy.label_shift_threshold == 0.25 and policy.new_kind_threshold == 0.05
