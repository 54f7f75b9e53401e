"""In Chromium: a file dropped on the dataset page's import form is imported by a real worker,
and the page shows the new samples and version when the import is done, without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.datasets.importing.mapping import content_id
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
    # The dropped file is previewed at once: its columns go by their names, nothing to fix.
    preview = page.locator("#import-preview")
    expect(preview).to_contain_text("pets.csv")
    expect(preview).to_contain_text("comma-separated · UTF-8 · 12 rows")
    expect(preview.locator("#import-problems")).to_have_count(0)
    preview.get_by_role("button", name="Import 12 rows").click()
    # The counts table and the version in the heading arrive on their own.
    expect(page.locator("#counts tfoot")).to_contain_text("12", timeout=60_000)
    expect(page.locator(".pagehead")).to_contain_text("version 1")
    screenshot(page, "dataset-after-upload")
    assert page.console_errors == []


SHEET = (
    "Beschreibung;Kategorie;Notiz\n"
    "Paket kam beschädigt an;Versand;dringend\n"
    "Wie ändere ich meine Adresse?;Konto;\n"
    "Rechnung doppelt bezahlt;Zahlung;prüfen\n"
    "Paket kam beschädigt an;Versand;\n"
)


def test_a_spreadsheet_without_ids_is_mapped_in_the_preview_and_imported(
    page, team, celery_worker_process, screenshot
):
    """A semicolon CSV a spreadsheet saved, with German headings and no id column: the user
    says which column is the text and which the label, lets Loupe make the ids, imports."""
    dataset = Dataset.objects.create(project=team.project, name="tickets", labels=[])
    log_in(page, team.user("scientist").username)
    page.goto(f"/datasets/{dataset.pk}/")
    page.set_input_files(
        "#import-form input[type=file]",
        {"name": "tickets.csv", "mimeType": "text/csv", "buffer": SHEET.encode("cp1252")},
    )
    preview = page.locator("#import-preview")
    expect(preview).to_contain_text("semicolon-separated · Windows-1252 · 4 rows")
    expect(preview.locator("tbody")).to_contain_text("Paket kam beschädigt an")
    problems = preview.locator("#import-problems")
    expect(problems).to_contain_text("no column is the id")
    expect(preview.get_by_role("button", name="Import 4 rows")).to_be_disabled()
    # Nothing is in the dataset yet, and the file field is empty: the page keeps the file.
    assert dataset.samples.count() == 0
    assert page.eval_on_selector("#import-form input[type=file]", "i => i.files.length") == 0

    preview.get_by_label("What column Beschreibung is").select_option("text")
    expect(preview.get_by_label("What column Beschreibung is")).to_have_value("text")
    preview.get_by_label("What column Kategorie is").select_option("label")
    expect(preview.get_by_label("What column Kategorie is")).to_have_value("label")
    preview.get_by_label("What column Notiz is").select_option("ignore")
    expect(preview.get_by_label("What column Notiz is")).to_have_value("ignore")
    expect(problems).to_contain_text("no column is the id")
    preview.get_by_label("Generate ids").check()
    expect(preview.locator("#import-problems")).to_have_count(0)
    preview.get_by_role("button", name="Import 4 rows").click()
    expect(page.locator("#import-preview")).to_be_empty()
    expect(page.locator("#counts tfoot")).to_contain_text("4", timeout=60_000)
    expect(page.locator("#counts")).to_contain_text("Versand")
    page.goto(f"/datasets/{dataset.pk}/samples/")
    expect(page.locator("body")).to_contain_text("Rechnung doppelt bezahlt")
    ids = sorted(dataset.samples.values_list("external_id", flat=True))
    first = content_id("Paket kam beschädigt an")
    assert first in ids and f"{first}-2" in ids
    assert page.console_errors == [], "\n".join(page.console_errors)


def test_the_preview_fits_a_wide_and_a_narrow_screen(page, team, screenshot):
    dataset = Dataset.objects.create(project=team.project, name="tickets", labels=[])
    log_in(page, team.user("scientist").username)
    page.goto(f"/datasets/{dataset.pk}/")
    page.set_input_files(
        "#import-form input[type=file]",
        {"name": "tickets.csv", "mimeType": "text/csv", "buffer": SHEET.encode("cp1252")},
    )
    expect(page.locator("#import-problems")).to_contain_text("no column is the id")
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, f"import-preview-{width}")
        # The table scrolls in its own box; the page does not get wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
