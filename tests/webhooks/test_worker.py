"""A real Celery worker delivers an event a service emitted: version commit → the deliver task
→ a receiver on 127.0.0.1 (allow-listed) that fails once, then takes the retry the worker
queued with its countdown."""

from __future__ import annotations

import json
import time

import pytest
from loupe_client import verify_webhook

from apps.datasets.models import Dataset, Sample
from apps.datasets.services import sample_relabel, version_commit
from apps.webhooks import services
from apps.webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def wait_for(predicate, timeout: float = 90.0, describe=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out: {describe()}")


def test_a_worker_delivers_a_committed_version_retrying_once(
    team, receiver, celery_workers, settings
):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    owner = team.user("owner")
    listening = receiver(answers=[500, 200])
    webhook = services.webhook_create(
        project=team.project, by=owner, url=listening.url, events=["version.committed"]
    )
    celery_workers(1, LOUPE_WEBHOOK_ALLOWED_HOSTS="127.0.0.1", LOUPE_WEBHOOK_BACKOFF_BASE="0.5")
    dataset = Dataset.objects.create(project=team.project, name="pets", labels=["cat", "dog"])
    sample = Sample.objects.create(dataset=dataset, external_id="a", label="cat", first_label="cat")
    sample_relabel(sample=sample, label="dog", by=owner)
    version = version_commit(dataset=dataset, by=owner, message="a dog, not a cat")
    wait_for(
        lambda: WebhookDelivery.objects.filter(status="delivered").exists(),
        describe=lambda: list(WebhookDelivery.objects.values("status", "attempts", "error")),
    )
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "version.committed" and delivery.attempts == 2
    assert [a["status_code"] for a in delivery.attempt_log] == [500, 200]
    assert len(listening.requests) == 2
    got = listening.requests[-1]
    assert verify_webhook(webhook.secret, got.body, got.headers["X-Loupe-Signature"])
    body = json.loads(got.body)
    assert body["event"] == "version.committed" and body["id"] == delivery.pk
    assert body["data"]["version"] == version.number
    assert body["data"]["dataset"] == {"id": dataset.pk, "name": "pets"}
