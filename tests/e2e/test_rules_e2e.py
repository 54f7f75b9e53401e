"""In Chromium: a manager turns the sample table's query into a rule that drafts relabel
batches on a budget, dry-runs it, switches it on, and reads its run log."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from apps.rules import services
from apps.rules.models import Rule, RuleRun
from apps.vendors.models import Batch
from tests.e2e.test_projects_e2e import log_in
from tests.vendors.conftest import vendor  # noqa: F401 - a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CATS = {"field": "label", "op": "=", "value": "cat"}


def test_a_manager_makes_a_rule_from_the_sample_table(page, world, team, vendor, screenshot):  # noqa: F811
    dataset, _run, _rows = world
    log_in(page, team.user("manager").username)
    page.goto(f"/datasets/{dataset.pk}/samples/?q={quote(json.dumps(CATS))}")
    page.get_by_role("link", name="make a rule of this query").click()
    expect(page.locator("h1")).to_have_text("Rules")
    assert json.loads(page.locator("#r-query").input_value()) == CATS

    # Only the settings of what is chosen show.
    expect(page.locator("#r-schedule")).to_be_hidden()
    page.select_option("#r-trigger", "schedule")
    expect(page.locator("#r-schedule")).to_be_visible()
    page.select_option("#r-schedule", "1440")
    expect(page.locator("#a-tag")).to_be_visible()
    page.select_option("#r-action", "vendor_batch")
    expect(page.locator("#a-tag")).to_be_hidden()
    expect(page.locator("#a-bvendor")).to_be_visible()
    page.fill("#r-name", "Cats to relabel")
    page.fill("#a-bbudget", "0.25")
    page.get_by_role("button", name="Save rule").click()

    expect(page.locator(".flash-success")).to_contain_text("Dry-run it")
    rule = Rule.objects.get(name="Cats to relabel")
    assert rule.action == {"type": "vendor_batch", "vendor": vendor.pk, "budget": "0.25"}
    assert (rule.trigger, rule.schedule_minutes, rule.enabled) == ("schedule", 1440, False)
    expect(page.get_by_role("button", name="Switch on")).to_be_disabled()

    page.get_by_role("button", name="Dry-run now").click()
    cats = dataset.samples.filter(label="cat").count()
    lead = page.locator("#dryrun .lead")
    expect(lead).to_contain_text(f"{cats} samples match")
    expect(lead).to_contain_text("would act on 5")  # 0.25 budget at 0.05 an item
    expect(page.locator("#dryrun")).to_contain_text("the budget caps this run")
    expect(page.locator("#dryrun tbody tr")).to_have_count(5)
    screenshot(page, "rule-dry-run")

    page.get_by_role("button", name="Switch on").click()
    expect(page.locator("#rule-state")).to_have_text("on")
    services.rule_run(rule_id=rule.pk, why=RuleRun.Why.SCHEDULE)
    page.reload()
    row = page.locator("#runs tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Schedule")
    row.get_by_role("link", name="batch").click()
    batch = Batch.objects.get()
    expect(page).to_have_url(f"{page.url.split('/vendors/')[0]}/vendors/batches/{batch.pk}/")
    assert batch.items.count() == 5
    assert page.console_errors == []
