"""In Chromium: a manager adds a webhook for a receiver inside the network (allow-listed), reads
its secret, sends a test, turns it off, rotates its secret, and reads the delivery log."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.webhooks import services
from apps.webhooks.models import Webhook, WebhookDelivery
from tests.e2e.test_projects_e2e import log_in
from tests.webhooks.conftest import receiver, stored_webhook  # noqa: F401 - a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_manager_sets_up_a_webhook(page, team, receiver, settings, monkeypatch, screenshot):  # noqa: F811
    queued: list[int] = []
    monkeypatch.setattr(
        services, "_enqueue", lambda delivery_id, countdown=0: queued.append(delivery_id)
    )
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.LOUPE_WEBHOOK_BACKOFF_BASE = 0
    listening = receiver(answers=[200, 500])
    # A receiver that has been at work: delivered, failing, and an address that was refused.
    ci = stored_webhook(
        team,
        listening.url,
        events=["version.committed", "scoring.finished"],
        description="Retrain on new versions",
    )
    for event, payload in [("version.committed", {"version": 3}), ("scoring.finished", {"run": 8})]:
        delivery = services.delivery_create(webhook=ci, event=event, payload=payload)
        services.delivery_attempt(delivery_id=delivery.pk)
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = []
    metadata = stored_webhook(
        team, "http://169.254.169.254/latest/meta-data/", events=["drift.alert"]
    )
    services.delivery_attempt(
        delivery_id=services.delivery_create(webhook=metadata, event="drift.alert", payload={}).pk
    )
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]

    log_in(page, team.user("manager").username)
    page.goto(f"/projects/{team.project.slug}/")
    page.get_by_role("link", name="Webhooks").click()
    expect(page.locator("h1")).to_have_text("Webhooks")
    page.fill("#id_url", f"http://127.0.0.1:{listening.port}/chat")
    page.get_by_label("A review session closed (session.closed)").check()
    page.get_by_label("Drift alert (drift.alert)").check()
    page.fill("#id_description", "Team chat")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator(".flash-success")).to_contain_text("Webhook added")
    added = Webhook.objects.get(description="Team chat")
    card = page.locator(f"#webhook-{added.pk}")
    expect(card.locator(".webhook-events")).to_contain_text("session.closed")
    card.get_by_text("Show signing secret").click()
    expect(card.locator(".key")).to_have_text(added.secret)
    card.get_by_role("button", name="Send test").click()
    expect(page.locator(f"#webhook-{added.pk} tbody tr")).to_have_count(1)
    expect(page.locator(f"#webhook-{added.pk} tbody")).to_contain_text("ping")
    assert WebhookDelivery.objects.filter(webhook=added, event="ping").count() == 1 and queued
    page.locator(f"#webhook-{added.pk}").get_by_role("button", name="Turn off").click()
    expect(page.locator(f"#webhook-{added.pk} .sectionhead .badge")).to_have_text("off")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#webhook-{ci.pk}").get_by_role("button", name="Rotate secret").click()
    expect(page.locator(".flash-success")).to_contain_text("New secret")
    ci.refresh_from_db()
    page.locator(f"#webhook-{ci.pk}").get_by_text("Show signing secret").click()
    expect(page.locator(f"#webhook-{ci.pk} .key")).to_have_text(ci.secret)
    expect(page.locator(f"#webhook-{metadata.pk} tbody")).to_contain_text("cloud metadata address")
    screenshot(page, "webhooks")

    page.get_by_role("link", name=ci.url).click()
    expect(page.locator("h1")).to_have_text(ci.url)
    expect(page.locator("#deliveries tbody tr[data-delivery]")).to_have_count(2)
    page.locator("#deliveries summary").first.click()
    expect(page.locator("#deliveries pre").first).to_contain_text('"run": 8')
    screenshot(page, "webhook-detail")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/webhooks/projects/{team.project.slug}/")
    expect(page.locator(f"#webhook-{metadata.pk} tbody")).to_contain_text("Refused")
    screenshot(page, "webhooks-phone")
    assert page.console_errors == []
