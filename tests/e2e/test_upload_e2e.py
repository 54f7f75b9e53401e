"""In Chromium: a file dropped on the dataset page's import form is imported by a real worker,
and the page shows the new samples and version when the import is done, without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.datasets.models import Dataset
from tests.e2e.test_projects_e2e import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_dataset_page_updates_when_the_upload_is_imported(
    page, team, tmp_path, celery_worker_process, screenshot
):
    dataset = Dataset.objects.create(project=team.project, name="fresh", labels=["cat", "dog"])
    path = tmp_path / "pets.csv"
    path.write_text(
        "id,text,label\n" + "".join(f"p{i},pet {i},{('cat', 'dog')[i % 2]}\n" for i in range(12))
    )
    log_in(page, team.user("scientist").username)
    page.goto(f"/datasets/{dataset.pk}/")
    expect(page.locator("#counts tfoot")).to_contain_text("0")
    # Dropped on the form, as from a file manager.
    dropped = page.evaluate_handle(
        """(text) => { const dt = new DataTransfer();
           dt.items.add(new File([text], "pets.csv", {type: "text/csv"})); return dt; }""",
        path.read_text(),
    )
    page.dispatch_event("#import-form", "dragover", {"dataTransfer": dropped})
    expect(page.locator("#import-form")).to_have_class(re.compile("dropping"))
    page.dispatch_event("#import-form", "drop", {"dataTransfer": dropped})
    expect(page.locator("#import-form")).not_to_have_class(re.compile("dropping"))
    assert page.eval_on_selector("#import-form input[type=file]", "i => i.files[0].name") == (
        "pets.csv"
    )
    page.get_by_role("button", name="Upload and import").click()
    # The counts table and the version in the heading arrive on their own.
    expect(page.locator("#counts tfoot")).to_contain_text("12", timeout=60_000)
    expect(page.locator(".pagehead")).to_contain_text("version 1")
    screenshot(page, "dataset-after-upload")
    assert page.console_errors == []
