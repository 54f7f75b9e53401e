"""In Chromium: the sample table's Export links download what the table shows, its query, order
and columns, as CSV and as Parquet."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest
from playwright.sync_api import expect

from tests.e2e.test_projects_e2e import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_export_downloads_the_tables_query_order_and_columns(page, world, team, screenshot):
    dataset, _run, rows = world
    log_in(page, team.user("viewer").username)
    query = {"field": "split", "op": "!=", "value": "test"}
    page.goto(
        f"/datasets/{dataset.pk}/samples/?q={quote(json.dumps(query))}&ordering=-mislabel_score"
        "&columns=external_id,label,mislabel_score,tags"
    )
    want = sorted(
        (
            r
            for r in rows
            if r["split"] != "test" and r["score"] and r["score"]["mislabel_score"] is not None
        ),
        key=lambda r: (r["score"]["mislabel_score"], r["id"]),
        reverse=True,
    )
    shown = page.locator("#sample-table tbody tr")
    expect(shown).to_have_count(len(want))
    export = page.locator("#export")
    expect(export).to_be_visible()
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 860})
        screenshot(page, f"explorer-export-{width}")
    page.set_viewport_size({"width": 1280, "height": 860})

    with page.expect_download() as waiting:
        export.get_by_role("link", name="CSV").click()
    download = waiting.value
    assert download.suggested_filename == "q-samples.csv"
    table = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert list(table[0]) == ["external_id", "label", "mislabel_score", "tags"]
    assert [r["external_id"] for r in table] == [r["external_id"] for r in want]
    assert [float(r["mislabel_score"]) for r in table] == [
        r["score"]["mislabel_score"] for r in want
    ]

    with page.expect_download() as waiting:
        export.get_by_role("link", name="Parquet").click()
    download = waiting.value
    assert download.suggested_filename == "q-samples.parquet"
    parquet = pq.read_table(download.path())
    assert parquet.column("external_id").to_pylist() == [r["external_id"] for r in want]
    assert page.console_errors == []
