"""In Chromium: filter the sample table with chips, select samples and tag them, select all that
match, and step through the query's samples on the sample page by keyboard."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.datasets.models import SampleTag
from tests.e2e.test_projects_e2e import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_filter_select_and_tag(page, world, team, screenshot):
    dataset, run, rows = world
    log_in(page, team.user("reviewer").username)
    columns = "external_id,split,label,mislabel_score,tags"
    page.goto(f"/datasets/{dataset.pk}/samples/?ordering=-mislabel_score&columns={columns}")
    page.get_by_label("Field").select_option("split")
    page.get_by_label("Operator").select_option("=")
    page.get_by_label("Value").fill("test")
    page.get_by_role("button", name="Add filter").click()
    expect(page.locator(".chip")).to_have_text(re.compile(r'split = "test"'))

    want = sorted(
        (
            r
            for r in rows
            if r["split"] == "test" and r["score"] and r["score"]["mislabel_score"] is not None
        ),
        key=lambda r: (r["score"]["mislabel_score"], r["id"]),
        reverse=True,
    )
    shown = page.locator("#sample-table tbody tr")
    expect(shown).to_have_count(len(want))
    assert [int(x) for x in shown.evaluate_all("rows => rows.map(r => r.dataset.sample)")] == [
        r["id"] for r in want
    ]
    screenshot(page, "explorer-table")

    # Tick two rows and tag them.
    picked = [want[0]["id"], want[2]["id"]]
    for sample_id in picked:
        page.locator(f'#sample-table input[name=ids][value="{sample_id}"]').check()
    expect(page.locator("#selected-count")).to_have_text("2")
    page.get_by_label("Tag", exact=True).fill("needs a look")
    page.get_by_role("button", name="Tag", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("Tagged 2 samples")
    assert sorted(
        SampleTag.objects.filter(tag__name="needs a look").values_list("sample_id", flat=True)
    ) == sorted(picked)
    expect(page.locator(".chip")).to_have_count(1)  # back on the same query
    assert f"columns={columns.replace(',', '%2C')}" in page.url  # the table's columns kept
    expect(page.locator(f'#sample-table tr[data-sample="{picked[0]}"] td.meta')).to_contain_text(
        "needs a look"
    )

    # Select every match (the whole query, not just this page) and tag them too.
    page.get_by_label(re.compile("Select all .*matching")).check()
    expect(page.locator("#selected-count")).to_have_text("All matching")
    page.get_by_label("Tag", exact=True).fill("test split")
    page.get_by_role("button", name="Tag", exact=True).click()
    everything_test = {r["id"] for r in rows if r["split"] == "test"}
    expect(page.locator(".flash-success")).to_contain_text(f"Tagged {len(everything_test)} samples")
    assert (
        set(SampleTag.objects.filter(tag__name="test split").values_list("sample_id", flat=True))
        == everything_test
    )
    assert page.console_errors == []


def test_keyboard_steps_through_the_query_on_the_sample_page(page, world, team):
    dataset, run, rows = world
    log_in(page, team.user("viewer").username)
    query = '{"field": "label", "op": "=", "value": "cat"}'
    page.goto(f"/datasets/{dataset.pk}/samples/?ordering=margin&q={query}")
    order = [
        int(x)
        for x in page.locator("#sample-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.sample)"
        )
    ]
    assert len(order) >= 3
    page.locator(f'#sample-table tr[data-sample="{order[0]}"] a').first.click()
    expect(page).to_have_url(re.compile(rf"/samples/{order[0]}/\?"))
    expect(page.locator("#scores")).to_be_visible()
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(rf"/samples/{order[1]}/\?"))
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(rf"/samples/{order[2]}/\?"))
    page.keyboard.press("k")
    expect(page).to_have_url(re.compile(rf"/samples/{order[1]}/\?"))
    expect(page.locator("#neighbours li")).to_have_count(10)
    assert page.console_errors == []


def test_similar_samples_open_nearest_first_from_the_sample_page(page, world, team, screenshot):
    import numpy as np

    from apps.datasets.models import Embedding

    dataset, run, rows = world
    vectors = {
        e.sample_id: np.asarray(e.vector, dtype=float) / np.linalg.norm(e.vector)
        for e in Embedding.objects.filter(space__dataset=dataset)
    }

    def close_to(anchor: int) -> dict[int, float]:
        cosines = {k: float(v @ vectors[anchor]) for k, v in vectors.items() if k != anchor}
        return {k: c for k, c in cosines.items() if c >= 0.9}

    anchor = max(vectors, key=lambda k: len(close_to(k)))
    want = sorted(close_to(anchor), key=lambda k: -close_to(anchor)[k])
    assert len(want) >= 3
    log_in(page, team.user("viewer").username)
    page.goto(f"/datasets/{dataset.pk}/samples/{anchor}/")
    page.get_by_role("link", name=re.compile("at least 0.9 similar")).click()
    expect(page.get_by_label("Sort by")).to_have_value("-similarity")
    shown = page.locator("#sample-table tbody tr")
    expect(shown).to_have_count(len(want))
    assert [int(x) for x in shown.evaluate_all("rows => rows.map(r => r.dataset.sample)")] == want
    similarities = [float(x) for x in page.locator("td.similarity").all_inner_texts()]
    assert similarities == sorted(similarities, reverse=True) and similarities[-1] >= 0.9
    screenshot(page, "explorer-similar")
    assert page.console_errors == []


def test_stale_scores_banner_scores_the_newest_version(page, team, tmp_path, screenshot):
    from apps.datasets.services import sample_relabel, version_commit
    from apps.quality.services import scoring_run_execute, scoring_run_start
    from tests.datasets.conftest import import_into
    from tests.quality.test_scoring_runs import blobs

    dataset = import_into(team, blobs(tmp_path))
    scoring_run_execute(run_id=scoring_run_start(dataset=dataset, by=None, enqueue=False).pk)
    sample = dataset.samples.get(external_id="s3")
    sample_relabel(sample=sample, label="dog", by=team.user("owner"))
    version = version_commit(dataset=dataset, by=team.user("owner"), message="s3 is a dog")
    log_in(page, team.user("owner").username)
    page.goto(f"/datasets/{dataset.pk}/samples/")
    banner = page.locator("#stale-scores")
    expect(banner).to_contain_text(f"the dataset is at version {version.number}")
    expect(banner).to_contain_text("1 sample relabelled")
    screenshot(page, "explorer-stale-scores")
    banner.get_by_role("button", name=f"Score version {version.number} now").click()
    expect(page.locator("#scoring")).to_contain_text(f"version {version.number}")
    assert dataset.scoring_runs.first().version == version.number
    assert page.console_errors == []


def test_undo_the_last_bulk_action_and_see_draft_markers(page, world, team, screenshot):
    dataset, run, rows = world
    log_in(page, team.user("owner").username)
    page.goto(f"/datasets/{dataset.pk}/samples/")
    first = rows[0]["id"]
    page.locator(f'#sample-table input[name=ids][value="{first}"]').check()
    page.get_by_label("Tag", exact=True).fill("to undo")
    page.get_by_role("button", name="Tag", exact=True).click()
    expect(page.locator("#undo")).to_contain_text("Tagged 1 sample “")
    assert SampleTag.objects.filter(tag__name="to undo").count() == 1
    screenshot(page, "explorer-undo")
    page.locator("#undo").get_by_role("button", name="Undo").click()
    expect(page.locator(".flash-success")).to_contain_text("Undone")
    expect(page.locator("#undo")).to_have_count(0)
    assert not SampleTag.objects.filter(tag__name="to undo").exists()
    # A removal put in the draft marks its row.
    page.locator(f'#sample-table input[name=ids][value="{first}"]').check()
    page.get_by_role("button", name="Mark for removal").click()
    expect(page.locator(f'#sample-table tr[data-sample="{first}"] .badge.draft')).to_have_text(
        "draft: removal"
    )
    assert page.console_errors == []
