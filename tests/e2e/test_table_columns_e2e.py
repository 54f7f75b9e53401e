"""In Chromium: sort the sample table by clicking a heading (again: the other way), choose its
columns from the menu, and save it as a view that reopens with the same columns and order."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.explorer.models import SavedView
from tests.e2e.test_projects_e2e import log_in
from tests.explorer.test_table_sorting import expected_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def shown_ids(page) -> list[int]:
    return [
        int(x)
        for x in page.locator("#sample-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.sample)"
        )
    ]


def headings(page) -> list[str]:
    return page.locator("#sample-table thead th[data-column]").evaluate_all(
        "cells => cells.map(c => c.dataset.column)"
    )


def test_sort_by_a_heading_choose_columns_and_save_the_view(page, world, team, screenshot):
    dataset, _run, rows = world
    log_in(page, team.user("reviewer").username)
    page.goto(f"/datasets/{dataset.pk}/samples/")
    assert headings(page) == [
        "external_id",
        "split",
        "label",
        "suggested_label",
        "mislabel_score",
        "text",
    ]

    # A heading sorts A to Z; clicked again, Z to A.
    label = page.locator('#sample-table th[data-column="label"]')
    label.get_by_role("link").click()
    expect(label).to_have_attribute("aria-sort", "ascending")
    assert shown_ids(page) == expected_order(rows, "label", descending=False)[:50]
    label.get_by_role("link").click()
    expect(label).to_have_attribute("aria-sort", "descending")
    assert shown_ids(page) == expected_order(rows, "label", descending=True)[:50]
    expect(page.locator("#ordering")).to_have_value("-label")

    # The column menu: drop the suggested label, add tags and a metadata key.
    page.get_by_text("Columns", exact=True).click()
    menu = page.locator("#column-menu")
    menu.locator('input[name=col][value="suggested_label"]').uncheck()
    menu.locator('input[name=col][value="tags"]').check()
    menu.locator('input[name=col][value="metadata.src"]').check()
    page.set_viewport_size({"width": 1440, "height": 900})
    screenshot(page, "table-columns-menu-1440")
    menu.get_by_role("button", name="Show columns").click()
    want = ["external_id", "split", "label", "mislabel_score", "text", "tags", "metadata.src"]
    expect(page.locator("#sample-table thead th[data-column]")).to_have_count(len(want))
    assert headings(page) == want
    expect(label).to_have_attribute("aria-sort", "descending")  # the order stays

    # Sort by the metadata key: samples without it last.
    src = page.locator('#sample-table th[data-column="metadata.src"]')
    src.get_by_role("link").click()
    expect(src).to_have_attribute("aria-sort", "ascending")
    expect(src).to_contain_text("▲")
    assert shown_ids(page) == expected_order(rows, "metadata.src", descending=False)[:50]
    screenshot(page, "table-columns-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "table-columns-390")
    page.get_by_text("Columns", exact=True).click()
    box = menu.locator(".menulist").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390  # all of it on screen
    screenshot(page, "table-columns-menu-390")
    page.get_by_text("Columns", exact=True).click()
    page.set_viewport_size({"width": 1280, "height": 860})

    # A sample's page keeps the table's columns for the way back.
    href = page.locator("#sample-table tbody tr a").first.get_attribute("href")
    assert "columns=" in href and "ordering=metadata.src" in href

    # Save it as a view; reopened from the menu, it shows the same columns in the same order.
    page.get_by_label("Save this view for the project").fill("By source")
    page.get_by_role("button", name="Save view").click()
    expect(page.locator(".flash-success")).to_contain_text("By source")
    view = SavedView.objects.get(dataset=dataset, name="By source")
    assert view.columns == want and view.ordering == "metadata.src"
    page.goto(f"/datasets/{dataset.pk}/samples/")
    assert "metadata.src" not in headings(page)
    page.get_by_text(re.compile(r"Saved views \(1\)")).click()
    page.get_by_role("link", name="By source").click()
    expect(page.locator("h1")).to_have_text("By source")
    assert headings(page) == want
    expect(page.locator('#sample-table th[data-column="metadata.src"]')).to_have_attribute(
        "aria-sort", "ascending"
    )
    assert shown_ids(page) == expected_order(rows, "metadata.src", descending=False)[:50]
    assert page.console_errors == []


def test_a_viewer_sorts_and_chooses_columns_but_saves_no_view(page, world, team):
    dataset, _run, rows = world
    log_in(page, team.user("viewer").username)
    page.goto(f"/datasets/{dataset.pk}/samples/?columns=external_id,metadata.n")
    page.locator('#sample-table th[data-column="metadata.n"] a').click()
    page.locator('#sample-table th[data-column="metadata.n"] a').click()
    expect(page.locator('#sample-table th[data-column="metadata.n"]')).to_have_attribute(
        "aria-sort", "descending"
    )
    assert shown_ids(page) == expected_order(rows, "metadata.n", descending=True)[:50]
    expect(page.get_by_role("button", name="Save view")).to_have_count(0)
    assert page.console_errors == []
