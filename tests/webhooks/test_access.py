"""Every webhook endpoint and page, tried as every role and as an outsider: owners and managers
manage webhooks; other members who may see the project get 403; vendors and outsiders 404."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.projects.capabilities import Cap
from apps.webhooks import services
from apps.webhooks.models import Webhook, WebhookDelivery
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected
from tests.webhooks.conftest import stored_webhook

pytestmark = pytest.mark.django_db

NEW = {"url": "https://example.com/new", "events": ["drift.alert", "rule.fired"]}

API = [
    ("get", "/api/projects/{p}/webhooks/", None, 200),
    ("post", "/api/projects/{p}/webhooks/", NEW, 201),
    ("get", "/api/webhooks/{w}/", None, 200),
    ("patch", "/api/webhooks/{w}/", {"active": False}, 200),
    ("delete", "/api/webhooks/{w}/", None, 204),
    ("get", "/api/webhooks/{w}/deliveries/", None, 200),
    ("post", "/api/webhooks/{w}/ping/", None, 202),
    ("post", "/api/webhooks/{w}/rotate-secret/", None, 200),
]

PAGES = [
    ("get", "/webhooks/projects/{s}/", None, 200),
    ("post", "/webhooks/projects/{s}/", NEW, 302),
    ("get", "/webhooks/{w}/", None, 200),
    ("post", "/webhooks/{w}/", {**NEW, "description": "d", "active": "on"}, 302),
    ("post", "/webhooks/{w}/ping/", {}, 302),
    ("post", "/webhooks/{w}/toggle/", {}, 302),
    ("post", "/webhooks/{w}/rotate/", {}, 302),
    ("post", "/webhooks/{w}/delete/", {}, 302),
]


@pytest.fixture
def hook(team, enqueued):
    webhook = stored_webhook(team, "https://example.com/hook", events=["version.committed"])
    services.delivery_create(webhook=webhook, event="version.committed", payload={"version": 1})
    return webhook


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body,ok", API)
def test_api_as_every_role(persona, method, template, body, ok, team, hook, api_as):
    url = template.format(p=team.project.pk, w=hook.pk)
    response = getattr(api_as(team.user(persona)), method)(url, body, format="json")
    assert response.status_code == expected(persona, Cap.INTEGRATIONS, ok), response.content[:300]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body,ok", PAGES)
def test_pages_as_every_role(persona, method, template, body, ok, team, hook, web_as):
    url = template.format(s=team.project.slug, w=hook.pk)
    client = web_as(team.user(persona))
    response = client.get(url) if method == "get" else client.post(url, body)
    assert response.status_code == expected(persona, Cap.INTEGRATIONS, ok)


def test_another_projects_webhook_is_a_404_even_for_an_owner(team, api_as, web_as):
    theirs = Webhook.objects.create(
        project=team.other_project, url="https://example.com/", events=["drift.alert"]
    )
    owner = team.user("owner")
    assert api_as(owner).get(f"/api/webhooks/{theirs.pk}/").status_code == 404
    assert web_as(owner).get(f"/webhooks/{theirs.pk}/").status_code == 404
    assert api_as(owner).get("/api/webhooks/999999/").status_code == 404


def test_the_api_creates_lists_and_logs(team, api_as, settings, enqueued):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = []
    client = api_as(team.user("manager"))
    created = client.post(f"/api/projects/{team.project.pk}/webhooks/", NEW, format="json")
    assert created.status_code == 201
    data = created.json()
    assert data["secret"].startswith("whsec_") and data["active"] is True
    assert data["events"] == ["drift.alert", "rule.fired"] and data["created_by"] == "manager1"
    listed = client.get(f"/api/projects/{team.project.pk}/webhooks/").json()
    assert [w["id"] for w in listed["results"]] == [data["id"]]
    for _ in range(3):
        assert client.post(f"/api/webhooks/{data['id']}/ping/").status_code == 202
    log = client.get(f"/api/webhooks/{data['id']}/deliveries/?page_size=2").json()
    assert [d["event"] for d in log["results"]] == ["ping", "ping"] and log["next"]
    ids = [d["id"] for d in log["results"]]
    assert ids == sorted(ids, reverse=True)
    assert log["results"][0]["status"] == "pending" and "attempt_log" in log["results"][0]
    bad = client.patch(f"/api/webhooks/{data['id']}/", {"url": "http://10.0.0.1/"}, format="json")
    assert bad.status_code == 400 and "private" in bad.json()["url"][0]
    refused = client.post(
        f"/api/projects/{team.project.pk}/webhooks/",
        {"url": "https://example.com/", "events": ["ping"]},
        format="json",
    )
    assert refused.status_code == 400 and "events" in refused.json()
    rotated = client.post(f"/api/webhooks/{data['id']}/rotate-secret/").json()
    assert rotated["secret"] != data["secret"]
    assert client.delete(f"/api/webhooks/{data['id']}/").status_code == 204
    assert not Webhook.objects.filter(pk=data["id"]).exists()


def test_a_patch_changes_only_the_fields_it_sends(team, api_as, enqueued):
    webhook = stored_webhook(team, "https://example.com/hook", description="CI", active=False)
    client = api_as(team.user("owner"))
    response = client.patch(f"/api/webhooks/{webhook.pk}/", {"url": "https://example.com/v2"})
    assert response.status_code == 200
    webhook.refresh_from_db()
    assert (webhook.url, webhook.description, webhook.active) == (
        "https://example.com/v2",
        "CI",
        False,
    )
    assert webhook.events == ["version.committed"]


def test_the_page_shows_each_webhook_with_its_secret_and_latest_deliveries(team, hook, web_as):
    services.delivery_create(webhook=hook, event="version.committed", payload={})
    WebhookDelivery.objects.filter(webhook=hook).update(
        status="refused", error="Refused: 10.0.0.1 is a private address", attempts=1
    )
    page = web_as(team.user("owner")).get(f"/webhooks/projects/{team.project.slug}/")
    html = page.content.decode()
    assert hook.url in html and hook.secret in html and '<details class="secret">' in html
    assert "10.0.0.1 is a private address" in html and f'href="/webhooks/{hook.pk}/"' in html
    assert "Send test" in html and "Rotate secret" in html and "Turn off" in html
    detail = web_as(team.user("owner")).get(f"/webhooks/{hook.pk}/").content.decode()
    assert "&quot;version&quot;: 1" in detail and "Delivery log" in detail


def test_the_page_reads_in_the_same_queries_for_one_webhook_or_many(team, hook, web_as):
    client = web_as(team.user("owner"))
    url = f"/webhooks/projects/{team.project.slug}/"
    client.get(url)  # session and the like, once
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for i in range(4):
        other = stored_webhook(team, f"https://example.com/{i}")
        for _ in range(3):
            services.delivery_create(webhook=other, event="version.committed", payload={})
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).content.decode().count('class="card webhook"') == 5
    assert len(many) == len(one)


def test_htmx_actions_swap_the_list_in_place(team, hook, web_as, enqueued):
    client = web_as(team.user("manager"))
    response = client.post(f"/webhooks/{hook.pk}/ping/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="webhooks"')
    assert "Test send to" in html and html.count('data-delivery="') == 2
    response = client.post(
        f"/webhooks/{hook.pk}/delete/", {"next": "detail"}, headers={"HX-Request": "true"}
    )
    assert response["HX-Redirect"] == f"/webhooks/projects/{team.project.slug}/"


def test_a_refused_url_on_the_page_is_an_error_on_its_field(team, web_as, settings):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = []
    response = web_as(team.user("owner")).post(
        f"/webhooks/projects/{team.project.slug}/",
        {"url": "http://169.254.169.254/latest/", "events": ["drift.alert"]},
    )
    assert response.status_code == 400
    assert "cloud metadata address" in response.content.decode()
    assert not Webhook.objects.exists()


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_project_page_links_webhooks_for_owners_and_managers(persona, team, web_as):
    response = web_as(team.user(persona)).get(f"/projects/{team.project.slug}/")
    if response.status_code != 200:
        return  # vendors have a page of their own; outsiders none
    link = f'href="/webhooks/projects/{team.project.slug}/"' in response.content.decode()
    assert link == (persona in ("owner", "manager"))
