"""Pages a role cannot use are not linked for it: every link and button each role is shown,
followed as that role, opens rather than answering 403 or 404."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urljoin, urlsplit

import pytest
from django.db import transaction

from apps.projects.capabilities import Role
from apps.review import services as review_services
from apps.vendors import services as vendor_services
from tests.vendors.conftest import make_batch

LINK = re.compile(r'<a\b[^>]*\bhref="([^"#]*)(?:#[^"]*)?"', re.S)
FORM = re.compile(r"<form\b([^>]*)>", re.S)
ATTR = re.compile(r'\b(method|action|hx-post)="([^"]*)"')
# Not pages of the product: files, the admin, signing out (a POST that ends the test's session).
SKIP = ("/static/", "/media/", "/admin/", "/accounts/logout/")
MAX_PAGES = 120


@pytest.fixture
def everything(world, team):
    """A scored dataset with a review session, a relabel batch sent to the vendor's annotator,
    and a comment: something behind every link of the project's pages."""
    dataset, run, _rows = world
    session = review_services.session_create(
        dataset=dataset,
        by=team.user("owner"),
        title="Cats or not",
        query={"field": "label", "op": "=", "value": "cat"},
        ordering="-mislabel_score",
        run=run,
        participants=[team.user("reviewer"), team.user("scientist")],
        blind=False,
    )
    acme = vendor_services.vendor_create(
        project=team.project, name="Acme Labels", price_per_item="0.05", currency="EUR"
    )
    vendor_services.vendor_member_add(vendor=acme, project=team.project, user=team.user("vendor"))
    batch = vendor_services.batch_send(batch=make_batch(world, team, acme), by=team.user("manager"))
    return dataset, session, batch


def _path(base: str, href: str) -> str | None:
    url = urljoin(base, unescape(href))
    parts = urlsplit(url)
    if parts.scheme not in ("", "http") or parts.netloc not in ("", "testserver"):
        return None
    if not parts.path.startswith("/") or parts.path.startswith(SKIP):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _posts(base: str, html: str) -> set[str]:
    found = set()
    for attrs in FORM.findall(html):
        values = dict(ATTR.findall(attrs))
        target = values.get("hx-post") or (
            values.get("action") if values.get("method", "").lower() == "post" else None
        )
        if target:
            path = _path(base, target)
            if path:
                found.add(path)
    return found


def _kind(path: str) -> str:
    return re.sub(r"\d+", "N", path.split("?")[0])


def _post_undone(client, target: str, page: str) -> int:
    with transaction.atomic():
        answer = client.post(target, {}, HTTP_REFERER=page)
        transaction.set_rollback(True)
    return answer.status_code


@pytest.mark.parametrize("persona", Role.values)
def test_no_link_or_button_shown_to_a_role_is_refused_to_it(persona, everything, team, client):
    dataset, session, batch = everything
    client.force_login(team.user(persona))
    start = ["/projects/", f"/projects/{team.project.slug}/"]
    if persona == "vendor":
        start.append(f"/vendors/batches/{batch.pk}/work/")
    else:
        start += [
            f"/datasets/{dataset.pk}/",
            f"/datasets/{dataset.pk}/samples/",
            f"/review/sessions/{session.pk}/",
        ]
    queue, seen, posts, refused = list(start), {_kind(s) for s in start}, {}, []
    pages = 0
    while queue and pages < MAX_PAGES:
        page = queue.pop(0)
        response = client.get(page)
        pages += 1
        if response.status_code in (403, 404):
            refused.append(f"GET {page}: {response.status_code}")
            continue
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        for href in LINK.findall(html):
            path = _path(page, href)
            # One page per kind: the sample table under a hundred queries, or the page of every
            # sample, is one page.
            if path and _kind(path) not in seen:
                seen.add(_kind(path))
                queue.append(path)
        for target in _posts(page, html):
            posts.setdefault(target.split("?")[0], (page, target))
    # Every button's target answers the role with something else than a refusal. An empty
    # form is posted and undone: a refused role gets 403 or 404 before the form is read.
    for _key, (page, target) in sorted(posts.items()):
        status = _post_undone(client, target, page)
        if status == 404:
            # An empty form can name nothing (no sample, no comment target): a 404 counts as a
            # refusal only when the owner, who may do everything, is not answered the same.
            client.force_login(team.user("owner"))
            status = None if _post_undone(client, target, page) == 404 else status
            client.force_login(team.user(persona))
        if status in (403, 404):
            refused.append(f"POST {target} (a button on {page}): {status}")
    assert pages > 3, "the crawl found no pages"
    assert refused == [], "\n".join(refused)
