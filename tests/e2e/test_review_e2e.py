"""In two Chromium windows: two reviewers work one blind session. Each sees the other's progress
without reloading, tallies stay hidden until one votes, the session closes, consensus is
applied, and the new version has exactly the labels the votes decided."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.datasets.models import DatasetVersion, Sample
from apps.review import services
from apps.review.models import ReviewSession
from tests.e2e.test_projects_e2e import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_two_reviewers_work_a_blind_session(browser, live_server, world, team, screenshot):
    dataset, run, _rows = world
    session = services.session_create(
        dataset=dataset,
        by=team.user("owner"),
        title="Birds or cats",
        query={"field": "label", "op": "=", "value": "cat"},
        ordering="-mislabel_score",
        run=run,
        participants=[team.user("reviewer"), team.user("scientist")],
        blind=True,
    )
    items = list(session.items.select_related("sample")[:3])
    windows = []
    for persona in ("reviewer", "scientist"):
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.console_errors = []
        page.on(
            "console",
            lambda m, p=page: p.console_errors.append(m.text) if m.type == "error" else None,
        )
        log_in(page, team.user(persona).username)
        page.goto(f"/review/sessions/{session.pk}/queue/")
        windows.append(page)
    alice, bob = windows

    # Blind: nothing shows before one votes.
    expect(alice.locator("#tally")).to_contain_text("Hidden until you vote")
    # Alice relabels the first sample to bird with the keyboard ("bird" is label 3).
    alice.keyboard.press("3")
    expect(alice).to_have_url(re.compile(r"\?i=1$"))
    # Bob's progress panel shows her vote without a reload.
    expect(bob.locator('[data-participant="reviewer1"] .done')).to_have_text("1", timeout=8000)
    # Bob still cannot see the tally of the first sample until he votes on it.
    expect(bob.locator("#tally")).to_contain_text("Hidden until you vote")
    bob.keyboard.press("3")
    expect(bob).to_have_url(re.compile(r"\?i=1$"))
    bob.keyboard.press("k")  # back to the first sample: now its votes show
    expect(bob.locator("#tally")).to_contain_text("reviewer1: relabel → bird")
    expect(alice.locator('[data-participant="scientist1"] .done')).to_have_text("1", timeout=8000)
    screenshot(bob, "review-queue")

    # The second sample: both keep. The third: a split vote (no consensus).
    alice.keyboard.press("a")
    expect(alice).to_have_url(re.compile(r"\?i=2$"))
    bob.keyboard.press("j")
    expect(bob).to_have_url(re.compile(r"\?i=1$"))
    bob.keyboard.press("a")
    expect(bob).to_have_url(re.compile(r"\?i=2$"))
    alice.keyboard.press("r")
    bob.keyboard.press("u")
    expect(alice.locator('[data-participant="scientist1"] .done')).to_have_text("3", timeout=8000)

    # A comment from the queue, with the keyboard.
    alice.keyboard.press("c")
    alice.keyboard.type("Looks like a **bird** to me")
    alice.get_by_role("button", name="Comment", exact=True).click()
    expect(alice.locator("#comments .commentbody strong")).to_have_text("bird")

    # The owner closes the session and applies the decisions.
    owner_context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    owner = owner_context.new_page()
    log_in(owner, team.user("owner").username)
    owner.goto(f"/review/sessions/{session.pk}/")
    # Closing asks first: dismissed, nothing happens; confirmed, the session closes.
    asked = []
    owner.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    owner.get_by_role("button", name="Close session").click()
    expect(owner.get_by_role("button", name="Close session")).to_be_visible()
    assert asked and asked[0].startswith("Close “") and session.title in asked[0]
    assert ReviewSession.objects.get(pk=session.pk).is_open
    owner.once("dialog", lambda dialog: dialog.accept())
    owner.get_by_role("button", name="Close session").click()
    expect(owner.locator(".flash-success")).to_contain_text("2 decisions by consensus, 1 without")
    expect(bob.locator("#progress .badge")).to_have_text("Closed", timeout=8000)
    screenshot(owner, "review-session-closed")
    owner.get_by_role("button", name=re.compile("Apply 1 decision")).click()
    expect(owner.locator(".flash-success")).to_contain_text("Decisions applied as version")

    version = DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()
    assert version.stats["relabelled"] == 1 and version.stats.get("removed", 0) == 0
    labels = dict(
        Sample.objects.filter(pk__in=[i.sample_id for i in items]).values_list("pk", "label")
    )
    assert labels == {
        items[0].sample_id: "bird",
        items[1].sample_id: "cat",
        items[2].sample_id: "cat",
    }
    for page in (alice, bob):
        assert page.console_errors == []
    # Closing the windows stops their polling; the server's threads then let go of the database.
    for page in (alice, bob, owner):
        page.context.close()
    wait_for_server_sessions()


def wait_for_server_sessions(seconds: float = 5) -> None:
    import time

    from tests.client.test_client import server_sessions

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server_sessions():
        time.sleep(0.05)


def test_script_in_a_comment_or_in_sample_text_renders_as_text(page, world, team):
    dataset, run, rows = world
    attack = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
    Sample.objects.filter(pk=rows[0]["id"]).update(text=f"hello {attack}")
    session = services.session_create(
        dataset=dataset,
        by=team.user("owner"),
        title="XSS",
        query={"field": "external_id", "op": "=", "value": rows[0]["external_id"]},
        run=run,
        participants=[team.user("reviewer")],
    )
    log_in(page, team.user("reviewer").username)
    page.goto(f"/review/sessions/{session.pk}/queue/")
    page.keyboard.press("c")
    page.keyboard.type(f"see {attack} [x](javascript:document.title='pwned')")
    page.get_by_role("button", name="Comment", exact=True).click()
    expect(page.locator("#comments .commentbody")).to_contain_text("<script>")
    expect(page.locator("#sample-text")).to_contain_text("<img src=x")
    page.goto(f"/datasets/{dataset.pk}/samples/{rows[0]['id']}/")
    expect(page.locator("#comments .commentbody")).to_contain_text("<script>")
    assert page.title() != "pwned"
    assert page.locator("#comments .commentbody a[href^='javascript']").count() == 0
    assert page.locator("#comments img, .sampletext img").count() == 0
