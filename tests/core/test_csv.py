"""Every CSV the product writes goes through one writer, and a cell that a spreadsheet would
run as a formula (=, +, -, @, a tab or a CR first) comes out inert in each of them."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from apps.audit.services import audit_record
from apps.core.csv import csv_writer
from apps.datasets.exporting import export_dataset
from apps.datasets.models import Dataset, DatasetVersion, Sample
from apps.quality.exporting import export_scores
from apps.quality.models import RunStatus, SampleScore, ScoringRun
from apps.vendors.models import Vendor
from tests.vendors.conftest import make_batch

HOSTILE = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1"]


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def assert_inert(rows: list[list[str]], *, expect: list[str] = HOSTILE) -> None:
    """No cell can run, and each hostile text is there, with the apostrophe that stops it."""
    cells = [cell for row in rows for cell in row]
    running = [
        cell
        for cell in cells
        if cell.startswith(("=", "+", "-", "@", "\t", "\r")) and not is_number(cell)
    ]
    assert not running
    for text in expect:
        assert any(cell == "'" + text or cell.startswith("'" + text) for cell in cells), text


def test_the_writer_neutralises_every_cell_and_leaves_numbers_alone():
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(HOSTILE)
    writer.writerows([[-1, -2.5, Decimal("-3"), None, "plain", "a=b"]])
    header, values = parse(out.getvalue())
    assert header == ["'" + text for text in HOSTILE]
    assert values == ["-1", "-2.5", "-3", "", "plain", "a=b"]


def test_the_vendor_batch_csv_by_page_and_api(world, team, vendor, web_as, api_as):
    batch = make_batch(world, team, vendor, gold_share=0)
    items = list(batch.items.select_related("sample").order_by("position"))
    for item, text in zip(items, HOSTILE, strict=False):
        Sample.objects.filter(pk=item.sample_id).update(text=text, external_id=text + "id")
    manager = team.user("manager")
    for response in (
        web_as(manager).get(f"/vendors/batches/{batch.pk}/export?format=csv"),
        api_as(manager).get(f"/api/batches/{batch.pk}/export/?format=csv"),
    ):
        assert response.status_code == 200
        assert_inert(parse(response.content.decode()), expect=HOSTILE + [t + "id" for t in HOSTILE])


def test_the_audit_log_csv(team, api_as):
    for text in HOSTILE:
        audit_record(actor=team.user("owner"), action="dataset.deleted", project=team.project,
                     target=text)  # fmt: skip
    response = api_as(team.user("owner")).get(f"/api/projects/{team.project.pk}/audit/?format=csv")
    assert_inert(parse(b"".join(response.streaming_content).decode()))


@pytest.mark.parametrize("table", ["spend", "commitments", "scorecards", "quality", "lift"])
def test_every_report_csv(books, team, web_as, table):
    # Vendor and dataset names lead the report tables; each takes its turn at being hostile.
    for text in HOSTILE:
        Vendor.objects.filter(home_project=books).update(name=text)
        Dataset.objects.filter(project=books).update(name=text)
        response = web_as(team.user("manager")).get(f"/reports/projects/{books.slug}/?csv={table}")
        assert response.status_code == 200
        assert_inert(parse(response.content.decode()), expect=[text])


@pytest.fixture
def hostile_dataset(transactional_db, team):
    """Samples whose ids and texts would run as formulas, in version 1, scored by a run whose
    reasons would too; committed, since the exports read through a connection of their own."""
    dataset = Dataset.objects.create(project=team.project, name="hostile", labels=["a", "b"])
    DatasetVersion.objects.create(dataset=dataset, number=1)
    run = ScoringRun.objects.create(dataset=dataset, version=1, status=RunStatus.DONE)
    for n, text in enumerate(HOSTILE):
        sample = Sample.objects.create(
            dataset=dataset, external_id=text + "id", label=HOSTILE[-1 - n], text=text
        )
        SampleScore.objects.create(
            run=run, sample=sample, suggested_label=text, mislabel_score=-0.5, reasons=[text]
        )
    return dataset, run


def test_the_dataset_export_csv(hostile_dataset):
    dataset, _run = hostile_dataset
    out = io.BytesIO()
    export_dataset(dataset=dataset, version=1, fmt="csv", out=out, by=None)
    assert_inert(parse(out.getvalue().decode()), expect=HOSTILE + [t + "id" for t in HOSTILE])


def test_the_scores_export_csv(hostile_dataset):
    _dataset, run = hostile_dataset
    out = io.BytesIO()
    export_scores(run=run, fmt="csv", out=out, by=None)
    rows = parse(out.getvalue().decode())
    assert_inert(rows, expect=HOSTILE + [t + "id" for t in HOSTILE])
    # A negative score is a number, written as one.
    assert {row[rows[0].index("mislabel_score")] for row in rows[1:]} == {"-0.5"}
