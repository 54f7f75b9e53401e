"""In Chromium: ? lists the page's own keyboard shortcuts in a dialog that Escape closes, / jumps
to the table's filter, and @ in a comment offers the project's members, whose mention notifies."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.review import services
from apps.review.models import Comment, Notification
from tests.e2e.test_projects_e2e import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def shortcut_rows(page) -> dict[str, str]:
    """The dialog's "On this page" list: keys (joined by " or ") → what they do."""
    rows = page.locator("#shortcuts-page > div")
    return {
        " or ".join(row.locator("kbd").all_inner_texts()): row.locator("dd").inner_text()
        for row in rows.all()
    }


def test_question_mark_lists_the_sample_pages_shortcuts_and_escape_closes(
    page, world, team, screenshot
):
    dataset, _run, _rows = world
    log_in(page, team.user("scientist").username)
    query = '{"field": "label", "op": "=", "value": "cat"}'
    page.goto(f"/datasets/{dataset.pk}/samples/?ordering=margin&q={query}")

    # The table: / jumps to the filter's value; [ and ] page through (only ] on the first page).
    page.keyboard.press("/")
    expect(page.locator("#add_value")).to_be_focused()
    page.locator("#add_value").blur()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    rows = shortcut_rows(page)
    assert rows["/"] == "Add a filter"
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    second = page.locator("#sample-table tbody tr").nth(1)
    second.locator("a").first.click()
    expect(page).to_have_url(re.compile(r"/samples/\d+/\?"))
    here = page.url

    # Typing ? in a field is just typing.
    page.locator("#comment-body").fill("")
    page.locator("#comment-body").press("?")
    expect(dialog).to_be_hidden()
    expect(page.locator("#comment-body")).to_have_value("?")
    page.locator("#comment-body").fill("")
    page.locator("#comment-body").blur()

    page.keyboard.press("?")
    expect(dialog).to_be_visible()
    # Focus moved into the dialog, onto its close button.
    expect(dialog.get_by_role("button", name="Close keyboard shortcuts")).to_be_focused()
    assert shortcut_rows(page) == {
        "k or ←": "Previous",
        "j or →": "Next",
        "c": "Write a comment",
    }
    expect(dialog).to_contain_text("Show these shortcuts")
    # While the dialog is open the page's keys do nothing.
    page.keyboard.press("j")
    assert page.url == here
    page.set_viewport_size({"width": 1440, "height": 900})
    screenshot(page, "shortcuts-dialog-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "shortcuts-dialog-390")
    page.set_viewport_size({"width": 1280, "height": 860})
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # The footer's link opens it too; the close button closes it.
    page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close keyboard shortcuts").click()
    expect(dialog).to_be_hidden()

    # And the keys work again: c goes to the comment box, j to the next sample.
    page.keyboard.press("c")
    expect(page.locator("#comment-body")).to_be_focused()
    page.locator("#comment-body").blur()
    page.keyboard.press("j")
    expect(page).not_to_have_url(here)
    assert page.console_errors == []


def test_the_review_queue_lists_its_vote_keys(page, world, team):
    dataset, run, _rows = world
    session = services.session_create(
        dataset=dataset,
        by=team.user("owner"),
        title="Birds or cats",
        query={"field": "label", "op": "=", "value": "cat"},
        ordering="-mislabel_score",
        run=run,
        participants=[team.user("reviewer")],
    )
    log_in(page, team.user("reviewer").username)
    page.goto(f"/review/sessions/{session.pk}/queue/")
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    rows = shortcut_rows(page)
    assert rows["a"] == "Keep the label"
    assert rows["r"] == "Remove the sample"
    assert rows["u"] == "Unsure"
    assert "Relabel as bird" in rows.values()
    assert rows["j or →"] == "Next"
    page.keyboard.press("Escape")
    # Its comment box offers members too.
    page.keyboard.press("c")
    page.keyboard.type("@o")
    expect(page.get_by_role("option")).to_have_count(1)
    expect(page.get_by_role("option")).to_contain_text("@owner1")
    page.keyboard.press("Backspace")
    page.keyboard.type("sci")
    expect(page.get_by_role("option")).to_have_count(1)
    expect(page.get_by_role("option")).to_contain_text("@scientist1")
    assert page.console_errors == []


def test_at_in_a_comment_offers_members_and_the_mention_notifies(page, world, team, screenshot):
    dataset, _run, rows = world
    sample_id = rows[0]["id"]
    log_in(page, team.user("owner").username)
    page.goto(f"/datasets/{dataset.pk}/samples/{sample_id}/")
    box = page.locator("#comment-body")
    box.click()
    box.press_sequentially("Is this a cat, @re")
    offered = page.get_by_role("listbox", name="Members to mention").get_by_role("option")
    expect(offered).to_have_count(1)
    expect(offered.first).to_contain_text("@reviewer1")
    expect(offered.first).to_have_attribute("aria-selected", "true")
    page.set_viewport_size({"width": 1440, "height": 900})
    screenshot(page, "mentions-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "mentions-390")
    page.set_viewport_size({"width": 1280, "height": 860})
    box.press("Enter")
    expect(box).to_have_value("Is this a cat, @reviewer1 ")
    expect(page.get_by_role("listbox")).to_have_count(0)

    # A bare @ offers everyone a mention would reach; arrows pick, a click works too.
    box.press_sequentially("and @")
    expect(offered).to_have_count(4)  # manager, reviewer, scientist, viewer: not self, no vendor
    box.press("ArrowDown")
    expect(offered.nth(1)).to_have_attribute("aria-selected", "true")
    box.press("Escape")
    expect(page.get_by_role("listbox")).to_have_count(0)
    box.press_sequentially("sc")
    page.get_by_role("option", name=re.compile("@scientist1")).click()
    expect(box).to_have_value("Is this a cat, @reviewer1 and @scientist1 ")
    expect(box).to_be_focused()

    page.get_by_role("button", name="Comment", exact=True).click()
    expect(page.locator("#comments .commentbody")).to_contain_text("@reviewer1")
    assert Comment.objects.get(sample_id=sample_id).body == (
        "Is this a cat, @reviewer1 and @scientist1"
    )
    told = Notification.objects.filter(kind="mention").values_list("user__username", flat=True)
    assert sorted(told) == ["reviewer1", "scientist1"]

    # The reviewer sees it.
    page.context.clear_cookies()
    log_in(page, team.user("reviewer").username)
    page.goto("/review/notifications/")
    expect(page.locator("main")).to_contain_text("owner1 mentioned you")
    assert page.console_errors == []
