"""In Chromium: a manager makes a batch from the sample table and sends it, the vendor labels it
with the keyboard, QA returns one item, the vendor fixes it, QA accepts, and the new version
has the vendor's labels."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.datasets.models import DatasetVersion, Sample
from apps.vendors import services
from apps.vendors.models import Batch
from tests.e2e.test_projects_e2e import log_in
from tests.e2e.test_review_e2e import wait_for_server_sessions

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def window(browser, live_server, user):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    log_in(page, user.username)
    return page


def test_batch_round_trip(browser, live_server, world, team, screenshot):
    dataset, run, rows = world
    vendor = services.vendor_create(project=team.project, name="Acme Labels", price_per_item="0.05")
    services.vendor_member_add(vendor=vendor, project=team.project, user=team.user("vendor"))
    query = '{"field": "label", "op": "=", "value": "bird"}'

    manager = window(browser, live_server, team.user("manager"))
    manager.goto(f"/datasets/{dataset.pk}/samples/?q={query}")
    manager.check("#select-all-matching")
    manager.locator("summary", has_text="Send to a vendor").click()
    manager.fill("#batch-title", "Birds, really?")
    manager.fill("#batch-instructions", "Pick the animal in the **text**.")
    manager.fill("#batch-gold", "0")
    manager.get_by_role("button", name="Make a draft batch").click()
    expect(manager.locator("#batch-status")).to_have_text("Draft")
    manager.once("dialog", lambda dialog: dialog.accept())
    manager.get_by_role("button", name="Send to Acme Labels").click()
    expect(manager.locator("#batch-status")).to_have_text("Sent")
    batch = Batch.objects.get()
    items = list(batch.items.select_related("sample").order_by("position"))

    annotator = window(browser, live_server, team.user("vendor"))
    annotator.goto(f"/projects/{team.project.slug}/")
    annotator.get_by_role("link", name="Birds, really?").click()
    expect(annotator.locator("h1")).to_have_text(f"Item 1 of {len(items)}")
    for n in range(len(items)):
        annotator.keyboard.press("2")  # dog
        expect(annotator.locator("#done")).to_have_text(str(n + 1))
    screenshot(annotator, "vendor-labelling")
    annotator.get_by_role("button", name="Submit for QA").click()
    expect(annotator.locator(".flash-success")).to_contain_text("Submitted for QA")

    reviewer = window(browser, live_server, team.user("reviewer"))
    reviewer.goto(f"/vendors/batches/{batch.pk}/")
    reviewer.get_by_role("button", name="Start QA").click()
    row = reviewer.locator(f'tr[data-item="{items[0].pk}"]')
    row.get_by_label(re.compile("Note for item")).fill("This one is a bird")
    row.get_by_role("button", name="Return").click()
    reviewer.fill("#rework", "One item is wrong")
    reviewer.get_by_role("button", name="Return for rework").click()
    expect(reviewer.locator("#batch-status")).to_have_text("Returned for rework")

    annotator.goto(f"/vendors/work/{batch.pk}/?i=0")
    expect(annotator.locator("#qa-note")).to_contain_text("This one is a bird")
    annotator.keyboard.press("3")  # bird
    expect(annotator.locator("#done")).to_have_text(str(len(items)))
    annotator.get_by_role("button", name="Submit for QA").click()
    expect(annotator.locator(".flash-success")).to_contain_text("Submitted for QA")

    reviewer.goto(f"/vendors/batches/{batch.pk}/")
    reviewer.get_by_role("button", name="Start QA").click()
    # Nothing checked since the rework (no gold, the fixed item not re-checked): the page says
    # so, lists the relabels, and accepting needs an override with a reason, after a dialog.
    expect(reviewer.locator("#accuracy")).to_contain_text("no gold item and no QA check")
    relabels = sum(1 for i in items if ("bird" if i.pk == items[0].pk else "dog") != i.sample.label)
    expect(reviewer.locator("#acceptance-changes")).to_contain_text(f"{relabels} relabels")
    screenshot(reviewer, "vendor-batch-acceptance")
    asked = []
    reviewer.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    reviewer.get_by_role("button", name="Accept the batch").click()
    expect(reviewer.locator("#batch-status")).to_have_text("In QA")
    assert asked and f"It makes {relabels} relabels" in asked[0]
    reviewer.once("dialog", lambda dialog: dialog.accept())
    reviewer.get_by_role("button", name="Accept the batch").click()
    expect(reviewer.locator(".flash-error")).to_contain_text("give a reason for the override")
    reviewer.fill("#override", "Small batch, checked by eye")
    reviewer.once("dialog", lambda dialog: dialog.accept())
    reviewer.get_by_role("button", name="Accept the batch").click()
    expect(reviewer.locator("#batch-status")).to_have_text("Accepted")
    expect(reviewer.locator("#acceptance")).to_contain_text("Small batch, checked by eye")
    screenshot(reviewer, "vendor-batch-accepted")

    version = DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()
    labels = dict(
        Sample.objects.filter(pk__in=[i.sample_id for i in items]).values_list("pk", "label")
    )
    assert labels == {i.sample_id: ("bird" if i.pk == items[0].pk else "dog") for i in items}
    assert version.stats["relabelled"] == len(items) - 1
    for page in (manager, annotator, reviewer):
        assert page.console_errors == []
        page.context.close()
    wait_for_server_sessions()
