"""The product's services announce their events: a committed version, a submitted batch, a
closed review session and a finished scoring run each queue a delivery to subscribed webhooks."""

from __future__ import annotations

import pytest

from apps.datasets.services import sample_relabel, version_commit
from apps.quality.services import scoring_run_execute, scoring_run_start
from apps.review.services import session_close, session_create
from apps.vendors import services as vendor_services
from apps.webhooks import services
from apps.webhooks.models import WebhookDelivery
from tests.datasets.conftest import import_into
from tests.quality.test_scoring_runs import blobs
from tests.vendors.conftest import make_batch, vendor  # noqa: F401 - a fixture
from tests.webhooks.conftest import stored_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def listening(team, enqueued):
    return stored_webhook(team, "https://example.com/hook", events=services.EVENTS)


def only_delivery(event: str) -> WebhookDelivery:
    [delivery] = WebhookDelivery.objects.filter(event=event)
    return delivery


def test_a_committed_version_is_announced(world, team, listening, enqueued):
    dataset, _run, _rows = world
    sample = dataset.samples.exclude(label="dog").first()
    sample_relabel(sample=sample, label="dog", by=team.user("owner"))
    version = version_commit(dataset=dataset, by=team.user("owner"), message="fix a cat")
    payload = only_delivery("version.committed").payload
    assert payload == {
        "dataset": {"id": dataset.pk, "name": "q"},
        "version": version.number,
        "message": "fix a cat",
        "stats": version.stats,
        "url": f"/datasets/{dataset.pk}/versions/",
    }
    assert len(enqueued) == 1


def test_a_submitted_batch_is_announced(world, team, vendor):  # noqa: F811
    stored_webhook(team, "https://example.com/hook", events=["batch.submitted"])
    batch = vendor_services.batch_send(
        batch=make_batch(world, team, vendor), by=team.user("manager")
    )
    for item in batch.items.all():
        vendor_services.label_set(item=item, annotator=team.user("vendor"), label="dog")
    vendor_services.batch_submit(batch=batch, by=team.user("vendor"))
    payload = only_delivery("batch.submitted").payload
    assert payload["batch"] == {"id": batch.pk, "title": "Cats check"}
    assert payload["vendor"] == {"id": vendor.pk, "name": "Acme Labels"}
    assert (
        payload["items"] == batch.items.count()
        and payload["url"] == f"/vendors/batches/{batch.pk}/"
    )


def test_a_closed_review_session_is_announced(world, team, listening):
    dataset, _run, _rows = world
    session = session_create(
        dataset=dataset,
        by=team.user("owner"),
        title="Birds",
        query={"field": "label", "op": "=", "value": "bird"},
        participants=[team.user("reviewer")],
    )
    session_close(session=session, by=team.user("owner"))
    payload = only_delivery("session.closed").payload
    assert payload["session"] == {"id": session.pk, "title": "Birds"}
    assert payload["dataset"]["id"] == dataset.pk
    assert payload["decided"] == 0 and payload["url"] == f"/review/sessions/{session.pk}/"


@pytest.mark.django_db(transaction=True)  # the import reads the project on its own connection
def test_a_finished_scoring_run_is_announced(team, tmp_path, listening, monkeypatch):
    # What else follows a finished run (rules after scoring) is not this test's business.
    monkeypatch.setattr(
        "apps.rules.services.rules_after_scoring_enqueue", lambda *, scoring_run_id: None
    )
    dataset = import_into(team, blobs(tmp_path, n=60))
    run = scoring_run_execute(run_id=scoring_run_start(dataset=dataset, by=None, enqueue=False).pk)
    assert run.status == "done", run.error
    payload = only_delivery("scoring.finished").payload
    assert payload == {
        "run": run.pk,
        "dataset": {"id": dataset.pk, "name": "animals"},
        "version": run.version,
        "url": f"/datasets/{dataset.pk}/health/",
    }


def test_nothing_is_queued_without_webhooks(world, team, enqueued):
    dataset, _run, _rows = world
    sample_relabel(sample=dataset.samples.first(), label="bird", by=team.user("owner"))
    version_commit(dataset=dataset, by=team.user("owner"), message="m")
    assert not WebhookDelivery.objects.exists() and enqueued == []
