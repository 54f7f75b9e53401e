"""In Chromium: the gallery of an image dataset. 100,000 samples scroll with a bounded number of
cells in the page, the right ones at the middle and the end; click, ctrl-click, shift-click
and a rubber band select, and the table's bulk actions tag (and undo) the selection; the
keyboard moves, selects and opens; the lightbox zooms and steps; near-duplicate groups show
side by side with their leakage and conflicts; the `?` list names the gallery's keys."""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from playwright.sync_api import expect

from apps.datasets.models import Dataset, Modality, SampleTag
from apps.datasets.selectors import media_path
from tests.e2e.test_projects_e2e import log_in
from tests.explorer.test_gallery import LABELS, make_images, picture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BIG = 100_000
BOUND = 400  # cells a screen may hold at most, whatever the dataset's size


def big_dataset(project) -> tuple[Dataset, int]:
    """100,000 image samples written by SQL, pointing at 20 files (this test is about the grid,
    not the thumbnail cache: tests/benchmarks/bench_gallery.py gives each sample its own)."""
    dataset = Dataset.objects.create(
        project=project, name="many", labels=LABELS, modality=Modality.IMAGE
    )
    for i in range(20):
        default_storage.save(
            media_path(dataset, f"img/{i}.png"),
            ContentFile(picture((12 * i, 90, 255 - 12 * i), (96, 96))),
        )
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO datasets_sample (dataset_id, external_id, split, label, first_label,
                   added_in, text, image, metadata, active, created_at)
               SELECT %s, 'b' || i, 'train', (%s::text[])[1 + i %% 2], NULL, 1, '',
                      'img/' || (i %% 20) || '.png', '{}', true, now()
               FROM generate_series(0, %s - 1) AS i""",
            [dataset.pk, LABELS, BIG],
        )
        cur.execute("ANALYZE datasets_sample")
    first = dataset.samples.order_by("pk").values_list("pk", flat=True).first()
    return dataset, first


def shown(page) -> dict[int, int]:
    """Position -> sample id of the cells on screen."""
    pairs = page.locator("#gallery .gcell:not([hidden])").evaluate_all(
        "cells => cells.map(c => [Number(c.dataset.pos), Number(c.dataset.id)])"
    )
    return dict(pairs)


def pictures_shown(page) -> None:
    """Wait until every thumbnail on screen is loaded and decoded."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('#gallery .gcell:not([hidden]) img')]
                 .every(img => img.complete && img.naturalWidth > 0)"""
    )


def settle(page) -> None:
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def test_a_hundred_thousand_images_scroll_with_few_cells_in_the_page(page, team, screenshot):
    dataset, first = big_dataset(team.project)
    log_in(page, team.user("viewer").username)
    page.goto(f"/datasets/{dataset.pk}/gallery/")
    expect(page.locator("#gallery")).to_have_attribute("data-ready", "1")
    expect(page.locator("#gallery-count")).to_have_text("100,000 samples")
    at_top = shown(page)
    assert 0 < len(at_top) <= BOUND and at_top[0] == first
    assert all(sample == first + pos for pos, sample in at_top.items())
    expect(page.locator("#gallery .gcell img").first).to_have_js_property("complete", True)

    for where in ("middle", "end"):
        page.evaluate(
            """where => {
                 const grid = document.getElementById("gallery");
                 grid.scrollTop = where === "end" ? grid.scrollHeight : grid.scrollHeight / 2;
               }""",
            where,
        )
        settle(page)
        cells = shown(page)
        assert 0 < len(cells) <= BOUND, where
        assert page.locator("#gallery .gcell").count() <= BOUND  # nodes are reused, not added
        assert all(sample == first + pos for pos, sample in cells.items()), where
        if where == "middle":
            assert min(cells) > BIG * 0.4 and max(cells) < BIG * 0.6
        else:
            assert max(cells) == BIG - 1
        # The cells' data arrive for what shows: its label badge.
        last = max(cells)
        expect(page.locator(f"#gcell-{last} .gcap .badge").first).to_have_text(LABELS[(last) % 2])
    screenshot(page, "gallery-100k-end")
    assert page.console_errors == []


def test_select_by_click_ctrl_shift_and_rubber_band_then_tag_and_undo(page, team, screenshot):
    dataset, _run, samples = make_images(team.project, 24)
    log_in(page, team.user("reviewer").username)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/datasets/{dataset.pk}/gallery/")
    expect(page.locator("#gallery")).to_have_attribute("data-ready", "1")
    cell = lambda i: page.locator(f"#gcell-{i}")  # noqa: E731

    cell(1).locator("img").click(modifiers=["Control"])
    cell(3).locator("img").click(modifiers=["Control"])
    expect(page.locator("#selected-count")).to_have_text("2")
    cell(3).locator("img").click(modifiers=["Control"])  # toggles off
    expect(page.locator("#selected-count")).to_have_text("1")
    # Shift-click adds the range from the last cell clicked (3) to this one.
    cell(5).locator("img").click(modifiers=["Shift"])
    expect(page.locator("#selected-count")).to_have_text("4")
    expect(cell(4)).to_have_attribute("aria-selected", "true")
    expect(cell(2)).to_have_attribute("aria-selected", "false")
    expect(cell(6)).to_have_attribute("aria-selected", "false")

    # A rubber band from inside cell 0 to inside the cell below-right of it: a 2 x 2 block.
    cols = page.evaluate(
        "() => Math.round(document.getElementById('gallery-space').clientWidth"
        " / (document.getElementById('gcell-0').offsetWidth + 8))"
    )
    a = cell(0).bounding_box()
    b = cell(cols + 1).bounding_box()
    page.mouse.move(a["x"] + 30, a["y"] + 30)
    page.mouse.down()
    page.mouse.move(a["x"] + 80, a["y"] + 80, steps=3)
    page.mouse.move(b["x"] + 20, b["y"] + 20, steps=5)
    expect(page.locator("#rubberband")).to_be_visible()
    page.mouse.up()
    expect(page.locator("#selected-count")).to_have_text("4")
    picked = [0, 1, cols, cols + 1]
    for i in picked:
        expect(cell(i)).to_have_attribute("aria-selected", "true")
    assert page.url.endswith("/gallery/")  # the drag opened nothing
    pictures_shown(page)
    screenshot(page, "gallery-selection-1440")

    page.get_by_label("Tag", exact=True).fill("seen in grid")
    page.get_by_role("button", name="Tag", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("Tagged 4 samples")
    assert re.search(r"/gallery/$", page.url)
    tagged = set(
        SampleTag.objects.filter(tag__name="seen in grid").values_list("sample_id", flat=True)
    )
    assert tagged == {samples[i].pk for i in picked}
    page.get_by_role("button", name="Undo").click()
    expect(page.locator(".flash-success")).to_contain_text("Undone")
    assert not SampleTag.objects.filter(tag__name="seen in grid").exists()

    # A plain click opens the sample page, in the gallery's query.
    expect(page.locator("#gallery")).to_have_attribute("data-ready", "1")
    cell(2).locator("img").click()
    expect(page).to_have_url(re.compile(rf"/datasets/{dataset.pk}/samples/{samples[2].pk}/"))
    assert page.console_errors == []


def test_keyboard_lightbox_and_shortcuts(page, team):
    dataset, _run, samples = make_images(team.project, 12)
    log_in(page, team.user("reviewer").username)
    page.goto(f"/datasets/{dataset.pk}/gallery/?ordering=-mislabel_score")
    grid = page.locator("#gallery")
    expect(grid).to_have_attribute("data-ready", "1")
    grid.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(grid).to_have_attribute("aria-activedescendant", "gcell-2")
    page.keyboard.press("Space")
    page.keyboard.press("Shift+ArrowRight")
    expect(page.locator("#selected-count")).to_have_text("2")
    page.keyboard.press("Escape")
    expect(page.locator("#selected-count")).to_have_text("0")

    # The lightbox (of the focused cell, the fourth): the full image, its label, scores and reasons; zoom; step; close.
    page.keyboard.press("z")
    box = page.locator("#lightbox")
    expect(box).to_be_visible()
    order = list(reversed(samples))  # highest mislabel score first
    expect(box).to_have_attribute("data-sample", str(order[3].pk))
    expect(page.locator("#lightbox-img")).to_have_attribute(
        "src", f"/datasets/{dataset.pk}/media/img/{order[3].external_id[1:]}.png"
    )
    expect(page.locator("#lightbox-reasons")).to_contain_text(f"reason {order[3].external_id[1:]}")
    expect(page.locator("#lightbox-badges")).to_contain_text(order[3].label)
    page.keyboard.press("+")
    expect(box).to_have_attribute("data-scale", "1.50")
    stage = page.locator("#lightbox-stage").bounding_box()
    page.mouse.move(stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2)
    page.mouse.wheel(0, -300)
    expect(box).not_to_have_attribute("data-scale", "1.50")
    page.locator("#lightbox-stage").dblclick()
    expect(box).to_have_attribute("data-scale", "1.00")
    page.keyboard.press("ArrowRight")
    expect(box).to_have_attribute("data-sample", str(order[4].pk))
    page.keyboard.press("Escape")
    expect(box).to_be_hidden()
    expect(grid).to_have_attribute("aria-activedescendant", "gcell-4")

    # ? lists the gallery's own keys.
    page.keyboard.press("?")
    dialog = page.locator("#shortcuts")
    expect(dialog).to_be_visible()
    for text in ("Move between images", "Select or unselect", "Open the sample", "View larger"):
        expect(dialog).to_contain_text(text)
    page.keyboard.press("Escape")
    grid.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/samples/{order[4].pk}/\?ordering=-mislabel_score"))
    assert page.console_errors == []


def test_duplicate_groups_side_by_side(page, team, screenshot):
    dataset, _run, samples = make_images(team.project, 12)
    log_in(page, team.user("viewer").username)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/datasets/{dataset.pk}/samples/")
    page.get_by_role("link", name="Gallery").click()
    expect(page).to_have_url(re.compile(r"/gallery/$"))
    page.get_by_role("link", name="Duplicate groups").click()
    expect(page.locator("#gallery")).to_have_attribute("data-ready", "1")
    expect(page.locator("#gallery-count")).to_have_text("2 groups, 5 images")
    heads = page.locator("#gallery .ghead:not([hidden])")
    expect(heads).to_have_count(2)
    expect(heads.nth(0)).to_contain_text("conflicting labels")  # 2, 3, 4: cat, dog
    expect(heads.nth(0)).to_contain_text("leakage")  # 3 is in test, 2 and 4 in train
    expect(heads.nth(1)).to_contain_text("leakage")  # 0 train, 1 test
    tops = page.locator("#gallery .gcell:not([hidden])").evaluate_all(
        "cells => cells.map(c => [Number(c.dataset.id), c.getBoundingClientRect().top])"
    )
    row = {sample: top for sample, top in tops}
    assert row[samples[2].pk] == row[samples[3].pk] == row[samples[4].pk]
    assert row[samples[0].pk] == row[samples[1].pk] > row[samples[2].pk]
    pictures_shown(page)
    screenshot(page, "gallery-groups-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator("#gallery .gcell").first).to_be_visible()
    screenshot(page, "gallery-groups-390")
    assert page.console_errors == []


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_screens_at_desk_and_phone_widths(page, team, screenshot, width, height):
    dataset, _run, _samples = make_images(team.project, 40)
    log_in(page, team.user("owner").username)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"/datasets/{dataset.pk}/gallery/?ordering=-mislabel_score")
    expect(page.locator("#gallery")).to_have_attribute("data-ready", "1")
    page.locator("#gcell-0 img").click(modifiers=["Control"])
    page.locator("#gcell-1 img").click(modifiers=["Control"])
    columns = page.evaluate(
        "() => new Set([...document.querySelectorAll('#gallery .gcell:not([hidden])')]"
        ".map(c => c.getBoundingClientRect().left)).size"
    )
    assert columns == (3 if width == 390 else 7)
    pictures_shown(page)
    # Nothing wider than the screen.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    screenshot(page, f"gallery-{width}")
    page.locator("#gcell-0 .gzoom").click()
    expect(page.locator("#lightbox")).to_be_visible()
    page.wait_for_function(
        "() => document.getElementById('lightbox-img').complete"
        " && document.getElementById('lightbox-img').naturalWidth > 0"
    )
    screenshot(page, f"gallery-lightbox-{width}")
    assert page.console_errors == []
