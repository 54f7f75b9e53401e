"""In Chromium: the health page says how the run's near duplicates were found, with the
embedding threshold calibrated on the dataset."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.datasets.conftest import import_into
from tests.e2e.test_projects_e2e import log_in
from tests.explorer.test_health import score
from tests.quality.test_scoring_runs import blobs

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_health_page_shows_the_calibrated_threshold_and_text_copies(
    page, team, tmp_path, screenshot
):
    path = blobs(tmp_path, flips=())
    lines = path.read_text().splitlines()
    # A long text and its copy with a typo, far apart in the given embedding.
    lines[1] = lines[1].replace(
        "sample 0", "The committee will meet on Thursday to discuss the budget"
    )
    lines[40] = lines[40].replace(
        "sample 39", "The committee will meet on Thrusday to discuss the budget"
    )
    path.write_text("\n".join(lines) + "\n")
    run = score(import_into(team, path))
    found = run.summary["duplicates"]
    assert found["pairs"]["text"] == 1 and found["n_duplicate_samples"] >= 2
    log_in(page, team.user("reviewer").username)
    page.goto(f"/datasets/{run.dataset_id}/health/")
    card = page.locator("#duplicates")
    expect(card).to_contain_text(f"{found['embedding_threshold']:.3f}")
    # Unlike texts: the text threshold stays at its floor.
    assert found["text_jaccard"] == 0.5
    expect(card).to_contain_text("Near-identical text: character Jaccard at least 0.500")
    expect(card).to_contain_text("1 pair")
    screenshot(page, "health-duplicates")
