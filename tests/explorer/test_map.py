"""The embedding map: its points as JSON columns, the stratified sample above the limit, and who
may see the page and its points."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django.db import connection

from apps.datasets.models import Dataset, Sample
from apps.explorer.selectors import _quotas, map_points, map_scores, samples_matching
from apps.projects.capabilities import Cap
from apps.quality.models import RunStatus, SampleScore, ScoringRun
from tests.conftest import PERSONAS
from tests.datasets.conftest import LABELS
from tests.projects.test_access_matrix import expected

SPLITS = ["train", "validation", "test", "production", "unlabeled"]


def points_url(dataset, **params) -> str:
    from urllib.parse import urlencode

    return f"/datasets/{dataset.pk}/map/points/" + (f"?{urlencode(params)}" if params else "")


def placed(rows) -> list[dict]:
    """The world's rows the run put on the map (both coordinates), by id."""
    return sorted(
        (
            r
            for r in rows
            if r["score"] and r["score"]["x"] is not None and r["score"]["y"] is not None
        ),
        key=lambda r: r["id"],
    )


def test_points_are_columns_of_every_placed_sample(world, team, web_as):
    dataset, run, rows = world
    response = web_as(team.user("viewer")).get(points_url(dataset))
    assert response.status_code == 200
    data = response.json()
    expect = placed(rows)
    assert data["ids"] == [r["id"] for r in expect]
    assert data["count"] == data["total"] == len(expect)
    assert data["sampled"] is False
    assert data["run"] == run.pk
    assert data["labels"] == LABELS
    assert data["splits"] == SPLITS
    for i, r in enumerate(expect):
        score = r["score"]
        assert data["x"][i] == pytest.approx(score["x"], abs=1e-4)
        assert data["y"][i] == pytest.approx(score["y"], abs=1e-4)
        assert data["label"][i] == (LABELS.index(r["label"]) if r["label"] else -1)
        suggested = score["suggested_label"]
        assert data["suggested"][i] == (LABELS.index(suggested) if suggested else -1)
        assert data["split"][i] == SPLITS.index(r["split"])
        assert data["cluster"][i] == score["cluster"]
    assert data["bounds"] == {
        "x": [min(r["score"]["x"] for r in expect), max(r["score"]["x"] for r in expect)],
        "y": [min(r["score"]["y"] for r in expect), max(r["score"]["y"] for r in expect)],
    }
    assert "score" not in data


def test_removed_samples_are_not_on_the_map(world, team, web_as):
    dataset, _run, rows = world
    gone = placed(rows)[0]["id"]
    Sample.objects.filter(pk=gone).update(active=False)
    data = web_as(team.user("owner")).get(points_url(dataset)).json()
    assert gone not in data["ids"]
    assert data["count"] == len(placed(rows)) - 1


def test_a_numeric_score_colours_the_points(world, team, web_as):
    dataset, _run, rows = world
    client = web_as(team.user("owner"))
    data = client.get(points_url(dataset, color="mislabel_score")).json()
    expect = placed(rows)
    values = [r["score"]["mislabel_score"] for r in expect]
    assert data["color"] == "mislabel_score"
    assert data["score"] == values  # the fixture's values have three decimals already
    known = [v for v in values if v is not None]
    assert data["score_range"] == [min(known), max(known)]

    only = client.get(points_url(dataset, color="mislabel_score", only="color")).json()
    assert only["ids"] == data["ids"] and only["score"] == values
    assert "x" not in only and "labels" not in only


def test_the_query_narrows_the_points(world, team, web_as):
    dataset, _run, rows = world
    q = {"field": "label", "op": "=", "value": "cat"}
    data = web_as(team.user("owner")).get(points_url(dataset, q=json.dumps(q))).json()
    assert data["ids"] == [r["id"] for r in placed(rows) if r["label"] == "cat"]
    assert set(data["label"]) == {0}


def test_a_polygon_of_the_map_selects_the_points_inside_it(world, team, web_as):
    dataset, _run, rows = world
    square = [[0.2, 0.2], [0.7, 0.2], [0.7, 0.7], [0.2, 0.7]]
    q = json.dumps({"within": square})
    data = web_as(team.user("owner")).get(points_url(dataset, q=q)).json()
    assert data["ids"] == [
        r["id"]
        for r in placed(rows)
        if 0.2 <= r["score"]["x"] <= 0.7 and 0.2 <= r["score"]["y"] <= 0.7
    ]
    assert data["ids"]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "{not json"},
        {"q": json.dumps({"field": "nope", "op": "=", "value": 1})},
        {"q": json.dumps({"within": [[0, 0], [1, 1]]})},
        {"color": "x"},
        {"only": "color"},
        {"run": "999999"},
    ],
)
def test_a_bad_request_gets_400_with_the_reason(world, team, web_as, params):
    dataset, _run, _rows = world
    response = web_as(team.user("owner")).get(points_url(dataset, **params))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_above_the_limit_a_sample_stratified_by_label_is_drawn(world, django_assert_num_queries):
    dataset, run, rows = world
    everything = placed(rows)
    samples = samples_matching(dataset, query={}, run=run, extra_scores=map_scores())
    with django_assert_num_queries(2):  # the count per label, then the sampled rows
        data = map_points(dataset, run, samples, limit=20)
    assert data["sampled"] is True
    assert data["count"] == len(data["ids"]) == 20
    assert data["total"] == len(everything)
    assert data["ids"] == sorted(data["ids"])
    assert set(data["ids"]) <= {r["id"] for r in everything}
    # Each label keeps its share of the 20, to within one sample.
    have = Counter(r["label"] for r in everything)
    drawn = Counter(data["labels"][i] if i >= 0 else None for i in data["label"])
    for label, n in have.items():
        assert abs(drawn[label] - n * 20 / len(everything)) < 1
    # The same sample every time.
    again = map_points(dataset, run, samples, limit=20)
    assert again["ids"] == data["ids"]


def test_quotas_are_proportional_and_sum_to_the_limit():
    quotas = _quotas({"a": 500_000, "b": 300_000, "c": 199_990, None: 10}, 100_000)
    assert quotas == {"a": 50_000, "b": 30_000, "c": 19_999, None: 1}
    assert sum(_quotas({"a": 1, "b": 1, "c": 1}, 2).values()) == 2


def test_stratified_sample_of_a_larger_map(team):
    """2,000 placed samples in three unequal classes, drawn down to 300 in SQL."""
    dataset = Dataset.objects.create(project=team.project, name="big", labels=["a", "b", "c"])
    run = ScoringRun.objects.create(dataset=dataset, version=1, status=RunStatus.DONE)
    labels = ["a"] * 1200 + ["b"] * 600 + ["c"] * 150 + [None] * 50
    samples = Sample.objects.bulk_create(
        Sample(dataset=dataset, external_id=f"s{i}", label=label) for i, label in enumerate(labels)
    )
    SampleScore.objects.bulk_create(
        SampleScore(run=run, sample=s, x=i % 50, y=i // 50) for i, s in enumerate(samples)
    )
    data = map_points(
        dataset,
        run,
        samples_matching(dataset, query={}, run=run, extra_scores=map_scores()),
        limit=300,
    )
    assert (data["count"], data["total"], data["sampled"]) == (300, 2000, True)
    drawn = Counter(data["label"])
    assert drawn == {0: 180, 1: 90, 2: 23, -1: 7}  # 180 + 90 + 22.5 + 7.5, remainders to c, none
    # Spread over the whole id range, not the first samples of each class.
    a_ids = sorted(i for i, label in zip(data["ids"], data["label"], strict=True) if label == 0)
    assert a_ids[0] < samples[100].pk and a_ids[-1] > samples[1100].pk
    # The threshold that spares sorting every row keeps what ranking every row would: the
    # class's 180 lowest hashes.
    with connection.cursor() as cur:
        cur.execute(
            "SELECT id FROM datasets_sample WHERE dataset_id = %s AND label = 'a'"
            " ORDER BY hashint8(id), id LIMIT 180",
            [dataset.pk],
        )
        assert a_ids == sorted(row[0] for row in cur.fetchall())


def test_page_of_a_scored_dataset_links_its_points(world, team, web_as):
    dataset, run, _rows = world
    response = web_as(team.user("reviewer")).get(f"/datasets/{dataset.pk}/map/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-points-url="/datasets/{dataset.pk}/map/points/"' in html
    assert f'data-run="{run.pk}"' in html
    assert "regl-scatterplot-1.16.0/regl-scatterplot.min.js" in html
    assert "js/map.js" in html
    assert "<script>" not in html  # no inline script: the CSP would refuse it
    # regl compiles its shaders' JavaScript with Function(): allowed on this page only.
    assert "'unsafe-eval'" in response["Content-Security-Policy"]
    health = web_as(team.user("reviewer")).get(f"/datasets/{dataset.pk}/health/")
    assert "'unsafe-eval'" not in health["Content-Security-Policy"]


def test_page_carries_the_query_it_was_opened_with(world, team, web_as):
    dataset, _run, _rows = world
    q = {"field": "label", "op": "=", "value": "dog"}
    response = web_as(team.user("owner")).get(f"/datasets/{dataset.pk}/map/", {"q": json.dumps(q)})
    assert response.status_code == 200
    assert 'data-query="{&quot;field&quot;:&quot;label&quot;' in response.content.decode()
    bad = web_as(team.user("owner")).get(f"/datasets/{dataset.pk}/map/", {"q": "[1"})
    assert bad.status_code == 400
    assert "The query cannot be run" in bad.content.decode()


def test_page_of_an_unscored_dataset_says_so(team, web_as):
    dataset = Dataset.objects.create(project=team.project, name="fresh", labels=["a"])
    ScoringRun.objects.create(dataset=dataset, version=1, status=RunStatus.RUNNING)
    client = web_as(team.user("owner"))
    response = client.get(f"/datasets/{dataset.pk}/map/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Not scored yet" in html
    assert "is running" in html
    assert "data-points-url" not in html
    points = client.get(points_url(dataset))
    assert points.status_code == 400
    assert "no finished scoring run" in points.json()["error"]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("path", ["map/", "map/points/"])
def test_who_may_see_the_map(world, team, web_as, persona, path):
    dataset, _run, _rows = world
    response = web_as(team.user(persona)).get(f"/datasets/{dataset.pk}/{path}")
    assert response.status_code == expected(persona, Cap.VIEW, 200)


@pytest.mark.parametrize("path", ["map/", "map/points/"])
def test_anonymous_visitors_are_sent_to_log_in(world, client, path):
    dataset, _run, _rows = world
    response = client.get(f"/datasets/{dataset.pk}/{path}")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_link_may_open_the_map_in_a_colouring(world, team, web_as):
    dataset, _run, _rows = world
    client = web_as(team.user("viewer"))
    page = client.get(f"/datasets/{dataset.pk}/map/?color=split").content.decode()
    assert '<option value="split" selected>' in page
    other = client.get(f"/datasets/{dataset.pk}/map/?color=password").content.decode()
    assert '<option value="label" selected>' in other
