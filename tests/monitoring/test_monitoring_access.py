"""The drift page and the monitoring endpoints, tried as every role and as an outsider; what the
page shows (chart, windows, cluster shift, thresholds form, empty state)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from apps.datasets.models import Dataset, DatasetVersion, Sample
from apps.monitoring.models import DriftCheck, MonitoringPolicy
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected

pytestmark = pytest.mark.django_db

START = datetime(2025, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def dataset(team) -> Dataset:
    dataset = Dataset.objects.create(project=team.project, name="reviews", labels=["cat", "dog"])
    DatasetVersion.objects.create(dataset=dataset, number=1, message="Import")
    return dataset


@pytest.fixture
def checked(dataset) -> Dataset:
    """Five checked days, the fourth an alert, and one day skipped; production samples too."""
    for i in range(5):
        alert = i == 3
        DriftCheck.objects.create(
            dataset=dataset,
            window_start=START + i * DAY,
            window_end=START + (i + 1) * DAY,
            n_production=120,
            n_train=900,
            auc=0.81 if alert else 0.5 + i / 100,
            p_value=1e-9 if alert else 0.4,
            share_out_of_coverage=0.31 if alert else 0.05,
            max_cluster_shift=0.22 if alert else 0.03,
            alert=alert,
            reasons=[
                {"signal": "test", "value": 1e-9, "threshold": 0.01},
                {"signal": "coverage", "value": 0.31, "threshold": 0.15},
            ]
            if alert
            else [],
            clusters=[
                {
                    "cluster": 4,
                    "train_share": 0.05,
                    "production_share": 0.27,
                    "change": 0.22,
                    "p_value": 1e-8,
                    "significant": True,
                    "n_production": 2,
                    "terms": ["nimbus", "speaker"],
                    "examples": ["p-1", "p-2"],
                }
            ],
        )
    DriftCheck.objects.create(
        dataset=dataset,
        window_start=START + 5 * DAY,
        window_end=START + 6 * DAY,
        n_production=4,
        skipped="4 samples, fewer than the 30 needed",
    )
    for i in (1, 2):
        Sample.objects.create(
            dataset=dataset,
            external_id=f"p-{i}",
            split="production",
            text="where is my nimbus",
            observed_at=START + 3 * DAY + timedelta(hours=i),
        )
    Sample.objects.create(
        dataset=dataset,
        external_id="p-9",
        split="production",
        text="another day",
        observed_at=START + DAY,
    )
    return dataset


# --- Who may do what ----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_drift_page(persona, team, web_as, checked):
    response = web_as(team.user(persona)).get(f"/datasets/{checked.pk}/drift/")
    assert response.status_code == expected(persona, Cap.VIEW, 200)
    if response.status_code == 200:
        html = response.content.decode()
        assert ("Check now" in html) == (persona in ("owner", "manager", "scientist"))
        assert ('name="p_value_threshold"' in html) == (
            persona in ("owner", "manager", "scientist")
        )


@pytest.mark.parametrize("persona", PERSONAS)
def test_check_now_button(persona, team, web_as, dataset, monkeypatch):
    queued = []
    monkeypatch.setattr(
        "apps.monitoring.services.drift.drift_check_enqueue",
        lambda *, dataset: queued.append(dataset.pk),
    )
    response = web_as(team.user(persona)).post(f"/datasets/{dataset.pk}/drift/check/")
    assert response.status_code == expected(persona, Cap.EDIT_DATA, 302)
    assert queued == ([dataset.pk] if response.status_code == 302 else [])


@pytest.mark.parametrize("persona", PERSONAS)
def test_thresholds_form(persona, team, web_as, dataset):
    form = {
        "window_hours": "12",
        "p_value_threshold": "0.001",
        "coverage_threshold": "0.2",
        "cluster_shift_threshold": "0.15",
        "min_samples": "50",
        "embedding_space": "",
    }
    response = web_as(team.user(persona)).post(f"/datasets/{dataset.pk}/drift/policy/", form)
    assert response.status_code == expected(persona, Cap.CURATE, 302)
    policy = MonitoringPolicy.objects.filter(project=team.project).first()
    changed = policy is not None and policy.window_hours == 12
    assert changed == (response.status_code == 302)
    if changed:
        assert (policy.p_value_threshold, policy.min_samples) == (0.001, 50)
        assert policy.updated_by == team.user(persona)


def test_a_bad_threshold_comes_back_with_its_message(team, web_as, dataset):
    client = web_as(team.user("scientist"))
    form = {
        "window_hours": "24",
        "p_value_threshold": "2",
        "coverage_threshold": "0.15",
        "cluster_shift_threshold": "0.1",
        "min_samples": "5",
    }
    response = client.post(f"/datasets/{dataset.pk}/drift/policy/", form, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="monitoring-policy"' in html and "<html" not in html
    assert "Give a p-value above 0 and at most 0.5." in html
    assert "Give a whole number of at least 10." in html
    assert not MonitoringPolicy.objects.filter(project=team.project, min_samples=5).exists()


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_drift_checks(persona, team, api_as, checked, django_assert_max_num_queries):
    client = api_as(team.user(persona))
    with django_assert_max_num_queries(8):
        response = client.get(f"/api/datasets/{checked.pk}/drift-checks/")
    assert response.status_code == expected(persona, Cap.VIEW, 200)
    if response.status_code == 200:
        results = response.json()["results"]
        assert [r["window_start"][:10] for r in results] == [
            "2025-11-06",
            "2025-11-05",
            "2025-11-04",
            "2025-11-03",
            "2025-11-02",
            "2025-11-01",
        ]
        assert results[0]["skipped"] and results[2]["alert"]
        assert results[2]["reasons"][1] == {"signal": "coverage", "value": 0.31, "threshold": 0.15}


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_check_now(persona, team, api_as, dataset, monkeypatch):
    queued = []
    monkeypatch.setattr(
        "apps.monitoring.services.drift.drift_check_enqueue",
        lambda *, dataset: queued.append(dataset.pk),
    )
    response = api_as(team.user(persona)).post(f"/api/datasets/{dataset.pk}/drift-checks/")
    assert response.status_code == expected(persona, Cap.EDIT_DATA, 202)
    assert queued == ([dataset.pk] if response.status_code == 202 else [])


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_production_summary_and_append(persona, team, api_as, checked):
    client = api_as(team.user(persona))
    url = f"/api/datasets/{checked.pk}/production/"
    summary = client.get(url)
    assert summary.status_code == expected(persona, Cap.VIEW, 200)
    if summary.status_code == 200:
        assert summary.json()["count"] == 3 and summary.json()["timed"] == 3
    row = {"id": f"new-{persona}", "text": "hello", "timestamp": "2025-11-09T10:00:00+01:00"}
    response = client.post(url, {"samples": [row]}, format="json")
    assert response.status_code == expected(persona, Cap.EDIT_DATA, 201)
    added = Sample.objects.filter(dataset=checked, external_id=row["id"]).first()
    assert (added is not None) == (response.status_code == 201)
    if added:
        assert added.observed_at == datetime(2025, 11, 9, 9, tzinfo=UTC)


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_monitoring_policy(persona, team, api_as):
    client = api_as(team.user(persona))
    url = f"/api/projects/{team.project.pk}/monitoring/"
    response = client.get(url)
    assert response.status_code == expected(persona, Cap.VIEW, 200)
    if response.status_code == 200:
        body = response.json()
        assert body["window_hours"] == 24 and body["p_value_threshold"] == 0.01
        assert body["coverage_threshold"] == 0.15 and body["cluster_shift_threshold"] == 0.1
        assert body["min_samples"] == 30 and body["embedding_space"] == ""
    change = {
        "window_hours": 6,
        "p_value_threshold": 0.005,
        "coverage_threshold": 0.2,
        "cluster_shift_threshold": 0.12,
        "min_samples": 40,
        "embedding_space": "minilm",
    }
    response = client.put(url, change, format="json")
    assert response.status_code == expected(persona, Cap.CURATE, 200)
    saved = MonitoringPolicy.objects.filter(project=team.project, window_hours=6).exists()
    assert saved == (response.status_code == 200)


def test_api_monitoring_policy_refuses_bad_values_field_by_field(team, api_as):
    client = api_as(team.user("owner"))
    url = f"/api/projects/{team.project.pk}/monitoring/"
    response = client.put(
        url,
        {
            "window_hours": 0,
            "p_value_threshold": 0.01,
            "coverage_threshold": 0.03,
            "cluster_shift_threshold": 0.1,
            "min_samples": 30,
        },
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"window_hours", "coverage_threshold"}


def test_another_projects_dataset_is_404(team, api_as, web_as):
    other = Dataset.objects.create(project=team.other_project, name="theirs", labels=["a"])
    assert web_as(team.user("owner")).get(f"/datasets/{other.pk}/drift/").status_code == 404
    client = api_as(team.user("owner"))
    assert client.get(f"/api/datasets/{other.pk}/drift-checks/").status_code == 404
    assert (
        client.post(
            f"/api/datasets/{other.pk}/production/", {"samples": []}, format="json"
        ).status_code
        == 404
    )


# --- What the page shows ------------------------------------------------------------------------


def test_page_draws_drift_over_time_with_the_alert_marked(team, web_as, checked):
    html = web_as(team.user("viewer")).get(f"/datasets/{checked.pk}/drift/").content.decode()
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count('class="panel"') == 3
    assert svg.count('class="threshold"') == 3
    assert svg.count('class="band"') == 1  # one alert window
    assert svg.count('class="dot alert"') == 3  # marked in each panel
    assert svg.count('class="dot"') == 3 * 4
    assert svg.count('class="skip"') == 3  # the skipped window, at the foot of each panel
    assert "2025-11-04: p = 1.0e-09, AUC 0.810" in svg
    assert "alert 15%" in svg and "alert p = 0.01" in svg
    assert "Nov 01" in svg and "Nov 06" in svg


def test_page_lists_windows_with_why_they_alerted(team, web_as, checked):
    html = web_as(team.user("viewer")).get(f"/datasets/{checked.pk}/drift/").content.decode()
    table = html[html.index('id="windows"') :]
    assert "two-sample test p = 1e-09 &lt; 0.01" in table
    assert "31% out of training coverage &gt; 15%" in table
    assert "not tested: 4 samples, fewer than the 30 needed" in table
    assert '<span class="badge alert">alert</span>' in table
    assert "31.0%" in table and "22.0 pts" in table


def test_a_window_links_to_its_production_samples(team, web_as, checked):
    client = web_as(team.user("viewer"))
    html = client.get(f"/datasets/{checked.pk}/drift/").content.decode()
    href = re.search(
        r'<a href="([^"]+)" title="This window\'s production samples">2025-11-04', html
    )
    url = href.group(1).replace("&amp;", "&")
    query = json.loads(parse_qs(urlsplit(url).query)["q"][0])
    assert {"field": "observed_at", "op": ">=", "value": "2025-11-04T00:00:00+00:00"} in query[
        "all"
    ]
    table = client.get(url).content.decode()
    assert "p-1" in table and "p-2" in table and "p-9" not in table


def test_page_shows_the_cluster_shift_of_the_alerting_window(team, web_as, checked):
    client = web_as(team.user("viewer"))
    html = client.get(f"/datasets/{checked.pk}/drift/").content.decode()
    clusters = html[html.index('id="clusters"') :]
    assert "window 2025-11-04" in clusters
    assert "nimbus, speaker" in clusters
    assert "5.0%" in clusters and "27.0%" in clusters and "+22.0 pts" in clusters
    href = re.search(r'<a href="([^"]+)">2 samples</a>', clusters).group(1).replace("&amp;", "&")
    table = client.get(href).content.decode()
    assert "p-1" in table and "p-2" in table and "p-9" not in table
    # Another window's clusters on request.
    first = DriftCheck.objects.get(dataset=checked, window_start=START)
    other = client.get(f"/datasets/{checked.pk}/drift/?window={first.pk}").content.decode()
    assert "window 2025-11-01" in other


def test_empty_page_says_how_to_send_production_samples(team, web_as, dataset):
    html = web_as(team.user("scientist")).get(f"/datasets/{dataset.pk}/drift/").content.decode()
    assert "No production windows checked yet" in html
    assert f"/api/datasets/{dataset.pk}/production/" in html
    assert "lp.append_production(" in html
    assert "<svg" not in html
    assert 'name="window_hours"' in html  # the thresholds can be set before anything arrives


def test_dataset_page_links_to_the_drift_page(team, web_as, dataset):
    html = web_as(team.user("viewer")).get(f"/datasets/{dataset.pk}/").content.decode()
    assert f'href="/datasets/{dataset.pk}/drift/"' in html


def test_the_query_language_filters_on_the_time_seen(team, api_as, checked):
    q = {"field": "observed_at", "op": "<", "value": "2025-11-03T00:00:00Z"}
    response = api_as(team.user("viewer")).get(
        f"/api/datasets/{checked.pk}/samples/", {"q": json.dumps(q)}
    )
    assert [s["external_id"] for s in response.json()["results"]] == ["p-9"]
    bad = {"field": "observed_at", "op": ">", "value": "2025-11-03"}
    response = api_as(team.user("viewer")).get(
        f"/api/datasets/{checked.pk}/samples/", {"q": json.dumps(bad)}
    )
    assert response.status_code == 400 and "timezone" in json.dumps(response.json())


def test_htmx_check_now_and_thresholds_swap_their_own_fragments(team, web_as, dataset, monkeypatch):
    monkeypatch.setattr(
        "apps.monitoring.services.drift.drift_check_enqueue", lambda *, dataset: None
    )
    client = web_as(team.user("scientist"))
    response = client.post(f"/datasets/{dataset.pk}/drift/check/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<form id="checknow"')
    assert "Drift check queued" in html  # the message, swapped in out of band
    form = {
        "window_hours": "24",
        "p_value_threshold": "0.005",
        "coverage_threshold": "0.2",
        "cluster_shift_threshold": "0.1",
        "min_samples": "40",
    }
    response = client.post(f"/datasets/{dataset.pk}/drift/policy/", form, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'id="monitoring-policy"' in html and 'value="0.005"' in html
    assert "Monitoring thresholds saved" in html


def test_api_monitoring_policy_put_without_a_threshold_is_400_naming_it(team, api_as):
    url = f"/api/projects/{team.project.pk}/monitoring/"
    response = api_as(team.user("owner")).put(url, {"window_hours": 6}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {
        "p_value_threshold",
        "coverage_threshold",
        "cluster_shift_threshold",
        "min_samples",
    }


def test_the_query_language_takes_any_offset_python_does(team, api_as, checked):
    url = f"/api/datasets/{checked.pk}/samples/"
    client = api_as(team.user("owner"))
    q = json.dumps({"field": "observed_at", "op": ">=", "value": "2025-11-03T00:00:00+23:59"})
    assert client.get(url, {"q": q}).status_code == 200
    q = json.dumps({"field": "observed_at", "op": ">=", "value": "0001-01-01T00:00:00+14:00"})
    assert client.get(url, {"q": q}).status_code == 400
