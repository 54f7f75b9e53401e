"""Review sessions, votes, consensus, decisions applied as a version, comments and mentions,
every page as every role, and what concurrent or repeated votes do."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from apps.datasets.models import Sample
from apps.projects.capabilities import Cap, Role
from apps.review import selectors as review_selectors
from apps.review import services
from apps.review.models import Comment, Decision, Notification, ReviewSession, Vote
from tests.conftest import PERSONAS
from tests.factories import MembershipFactory, UserFactory
from tests.projects.test_access_matrix import expected

CATS = {"field": "label", "op": "=", "value": "cat"}


def start(world, team, *, people=("reviewer", "scientist"), blind=True, query=CATS):
    dataset, run, _rows = world
    return services.session_create(
        dataset=dataset,
        by=team.user("owner"),
        title="Cats or not",
        query=query,
        ordering="-mislabel_score",
        run=run,
        participants=[team.user(p) for p in people],
        blind=blind,
    )


def test_a_session_queues_the_query_in_its_order_and_tells_the_participants(world, team):
    session = start(world, team)
    dataset, _run, rows = world
    want = sorted(
        (
            r
            for r in rows
            if r["label"] == "cat" and r["score"] and r["score"]["mislabel_score"] is not None
        ),
        key=lambda r: (r["score"]["mislabel_score"], r["id"]),
        reverse=True,
    )
    assert list(session.items.values_list("sample_id", flat=True)) == [r["id"] for r in want]
    told = Notification.objects.filter(kind="session").values_list("user__username", flat=True)
    assert sorted(told) == ["reviewer1", "scientist1"]
    with pytest.raises(ValidationError, match="cannot vote"):
        start(world, team, people=("viewer",))


def test_consensus_by_the_policy_then_adjudication_then_a_version(world, team):
    dataset, _run, _rows = world
    session = start(world, team, people=("reviewer", "scientist", "manager"))
    a, b, c = (s for s in session.items.select_related("sample")[:3])
    reviewer, scientist, manager = (team.user(p) for p in ("reviewer", "scientist", "manager"))
    # a: two relabels to dog and an unsure -> relabel by consensus (unsure does not count)
    services.vote_cast(
        session=session, sample=a.sample, voter=reviewer, choice="relabel", label="dog"
    )
    services.vote_cast(
        session=session, sample=a.sample, voter=scientist, choice="relabel", label="dog"
    )
    services.vote_cast(session=session, sample=a.sample, voter=manager, choice="unsure")
    # b: keep against remove -> no consensus
    services.vote_cast(session=session, sample=b.sample, voter=reviewer, choice="keep")
    services.vote_cast(session=session, sample=b.sample, voter=scientist, choice="remove")
    # c: two removes -> removal
    services.vote_cast(session=session, sample=c.sample, voter=reviewer, choice="remove")
    services.vote_cast(session=session, sample=c.sample, voter=manager, choice="remove")
    closed = services.session_close(session=session, by=team.user("owner"))
    assert closed.summary["decided"] == 2 and closed.summary["disagreement_count"] == 1
    decisions = {d.sample_id: (d.outcome, d.label) for d in closed.decisions.all()}
    assert decisions == {a.sample_id: ("relabel", "dog"), c.sample_id: ("remove", None)}
    # b waits for an adjudicator, who decides with a reason
    with pytest.raises(ValidationError, match="Say why"):
        services.decision_adjudicate(
            dataset=dataset,
            sample=b.sample,
            by=manager,
            outcome="relabel",
            label="bird",
            reason="",
            session=closed,
        )
    services.decision_adjudicate(
        dataset=dataset,
        sample=b.sample,
        by=manager,
        outcome="relabel",
        label="bird",
        reason="the beak",
        session=closed,
    )
    version = services.decisions_apply(session=closed, by=team.user("owner"))
    labels = dict(
        Sample.objects.filter(pk__in=[a.sample_id, b.sample_id, c.sample_id]).values_list(
            "pk", "label"
        )
    )
    active = dict(
        Sample.objects.filter(pk__in=[a.sample_id, b.sample_id, c.sample_id]).values_list(
            "pk", "active"
        )
    )
    assert labels[a.sample_id] == "dog" and labels[b.sample_id] == "bird"
    assert active == {a.sample_id: True, b.sample_id: True, c.sample_id: False}
    assert version.stats["relabelled"] == 2 and version.stats["removed"] == 1
    for decision in Decision.objects.filter(session=closed):
        assert decision.event is not None and decision.version == version.number
        assert decision.event.source == "review" and closed.title in decision.event.reason
    with pytest.raises(ValidationError, match="nothing to apply"):
        services.decisions_apply(session=closed, by=team.user("owner"))


def test_votes_change_until_the_session_closes_then_are_refused(world, team):
    session = start(world, team)
    item = session.items.select_related("sample").first()
    reviewer = team.user("reviewer")
    services.vote_cast(session=session, sample=item.sample, voter=reviewer, choice="keep")
    services.vote_cast(
        session=session, sample=item.sample, voter=reviewer, choice="relabel", label="bird"
    )
    assert list(Vote.objects.filter(session=session).values_list("choice", "label")) == [
        ("relabel", "bird")
    ]
    services.session_close(session=session, by=team.user("owner"))
    with pytest.raises(ValidationError, match="closed"):
        services.vote_cast(session=session, sample=item.sample, voter=reviewer, choice="remove")
    assert list(Vote.objects.filter(session=session).values_list("choice", "label")) == [
        ("relabel", "bird")
    ]
    with pytest.raises(ValidationError, match="participants"):
        reopened = start(world, team, people=("scientist",))
        services.vote_cast(session=reopened, sample=item.sample, voter=reviewer, choice="keep")


def test_the_database_refuses_a_second_vote_and_a_relabel_without_label(world, team):
    session = start(world, team)
    sample = session.items.first().sample
    Vote.objects.create(session=session, sample=sample, voter=team.user("reviewer"), choice="keep")
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(
            session=session, sample=sample, voter=team.user("reviewer"), choice="remove"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(
            session=session, sample=sample, voter=team.user("scientist"), choice="relabel"
        )


def _at_once(*calls):
    """Run the calls in threads released together, each on its own database connection."""
    barrier = threading.Barrier(len(calls))
    errors = []

    def run(call):
        try:
            barrier.wait()
            call()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_at_the_same_moment_and_a_double_submit_lose_nothing(world, team):
    session = start(world, team)
    sample = session.items.first().sample
    reviewer, scientist = team.user("reviewer"), team.user("scientist")

    def vote(user, choice, label=None):
        return lambda: services.vote_cast(
            session=session, sample=sample, voter=user, choice=choice, label=label
        )

    errors = _at_once(
        vote(reviewer, "relabel", "dog"), vote(scientist, "keep"), vote(reviewer, "relabel", "dog")
    )
    assert errors == []
    votes = sorted(
        Vote.objects.filter(session=session).values_list("voter__username", "choice", "label")
    )
    assert votes == [("reviewer1", "relabel", "dog"), ("scientist1", "keep", None)]


@pytest.mark.django_db(transaction=True)
def test_a_vote_racing_the_close_lands_before_it_or_is_refused(world, team):
    for _ in range(3):
        session = start(world, team)
        sample = session.items.first().sample
        errors = _at_once(
            lambda s=session, x=sample: services.vote_cast(
                session=s, sample=x, voter=team.user("reviewer"), choice="remove"
            ),
            lambda s=session: services.session_close(session=s, by=team.user("owner")),
        )
        session.refresh_from_db()
        counted = session.summary["votes"]
        stored = Vote.objects.filter(session=session).count()
        # Either the vote landed first (and the summary counts it) or it was refused.
        assert stored == counted
        assert all(isinstance(e, ValidationError) and "closed" in str(e) for e in errors)


def test_mentions_notify_and_mail_members_and_comments_are_markdown_made_safe(world, team, web_as):
    dataset, _run, rows = world
    sample = Sample.objects.get(pk=rows[2]["id"])
    team.user("reviewer").email = "rev@example.com"
    team.user("reviewer").save()
    comment = services.comment_create(
        project=dataset.project,
        author=team.user("scientist"),
        body='**Really** a cat? @reviewer1 @vendor1 @nobody <script>alert("x")</script> [click](javascript:alert(1))',
        sample=sample,
    )
    assert list(Notification.objects.values_list("user__username", "kind")) == [
        ("reviewer1", "mention")
    ]
    page = (
        web_as(team.user("viewer"))
        .get(f"/datasets/{dataset.pk}/samples/{sample.pk}/")
        .content.decode()
    )
    assert "<strong>Really</strong>" in page
    assert "<script>alert" not in page and 'href="javascript' not in page
    assert "&lt;script&gt;" in page
    with pytest.raises(ValidationError, match="author"):
        services.comment_edit(comment=comment, by=team.user("reviewer"), body="mine now")
    services.comment_edit(comment=comment, by=team.user("scientist"), body="edited")
    reply = services.comment_create(
        project=dataset.project, author=team.user("reviewer"), body="yes", parent=comment
    )
    assert reply.sample_id == sample.pk and reply.parent_id == comment.pk
    services.comment_delete(comment=comment, by=team.user("scientist"))
    assert Comment.objects.get(pk=comment.pk).deleted


def test_mail_goes_out_after_commit(world, team, django_capture_on_commit_callbacks):
    dataset, _run, rows = world
    team.user("reviewer").email = "rev@example.com"
    team.user("reviewer").save()
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_create(
            project=dataset.project,
            author=team.user("owner"),
            body="@reviewer1 look",
            sample=Sample.objects.get(pk=rows[0]["id"]),
        )
    assert [m.to for m in mail.outbox] == [["rev@example.com"]]
    assert "owner1 mentioned you" in mail.outbox[0].subject


PAGES = [
    ("get", "/review/sessions/{s}/", {}, Cap.VIEW, 200),
    ("get", "/review/sessions/{s}/progress/", {}, Cap.VIEW, 200),
    ("get", "/review/sessions/{s}/queue/", {}, Cap.VIEW, 200),
    ("get", "/review/projects/{p}/activity/", {}, Cap.VIEW, 200),
    ("post", "/review/sessions/{s}/vote/", {"position": "0", "choice": "keep"}, Cap.COMMENT, 302),
    ("post", "/review/comments/", {"session": "{s}", "body": "hello"}, Cap.COMMENT, 302),
    ("get", "/review/datasets/{d}/mentionable/", {"q": "re"}, Cap.COMMENT, 200),
    ("post", "/review/sessions/{s}/close/", {}, Cap.CURATE, 302),
    ("post", "/review/sessions/{s}/apply/", {}, Cap.CURATE, 302),
    (
        "post",
        "/review/sessions/{s}/adjudicate/",
        {"sample": "{x}", "outcome": "keep", "reason": "r"},
        Cap.ADJUDICATE,
        302,
    ),
    (
        "post",
        "/review/datasets/{d}/sessions/new/",
        {"title": "t", "participants": "reviewer1", "all": "1"},
        Cap.CURATE,
        302,
    ),
    (
        "post",
        "/review/projects/{p}/policy/",
        {"min_votes": "2", "agreement": "0.7"},
        Cap.MANAGE_MEMBERS,
        302,
    ),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body,cap,ok", PAGES)
def test_every_page_as_every_role(persona, method, template, body, cap, ok, world, team, web_as):
    dataset, _run, _rows = world
    session = start(world, team)
    sample_id = session.items.first().sample_id
    fill = {"s": session.pk, "p": team.project.slug, "d": dataset.pk, "x": sample_id}
    path = template.format(**fill)
    data = {k: v.format(**fill) for k, v in body.items()}
    response = getattr(web_as(team.user(persona)), method)(path, data)
    assert response.status_code == expected(persona, cap, ok), response.content[:300]


def test_mention_suggestions_offer_only_members_who_would_be_notified(world, team, web_as):
    dataset, _run, _rows = world
    # A member of another project, and one of this project's by first name.
    MembershipFactory(
        project=team.other_project, user=UserFactory(username="rex"), role=Role.REVIEWER
    )
    team.user("manager").first_name, team.user("manager").last_name = "Regina", "Moss"
    team.user("manager").save()
    client = web_as(team.user("owner"))

    def offered(q: str) -> list:
        response = client.get(f"/review/datasets/{dataset.pk}/mentionable/", {"q": q})
        assert response.status_code == 200
        return response.json()["members"]

    assert offered("re") == [
        {"username": "manager1", "name": "Regina Moss"},
        {"username": "reviewer1", "name": ""},
    ]
    assert [m["username"] for m in offered("REV")] == ["reviewer1"]
    # Everyone a mention would notify: not the writer, not a vendor (who cannot see comments).
    assert [m["username"] for m in offered("")] == [
        "manager1",
        "reviewer1",
        "scientist1",
        "viewer1",
    ]
    assert offered("zz") == []
    # What is offered is what notifies.
    names = " ".join(f"@{m['username']}" for m in offered(""))
    services.comment_create(
        project=dataset.project,
        author=team.user("owner"),
        body=names,
        dataset=dataset,
        sample=dataset.samples.first(),
    )
    told = Notification.objects.filter(kind="mention").values_list("user__username", flat=True)
    assert sorted(told) == ["manager1", "reviewer1", "scientist1", "viewer1"]


def test_notifications_page_lists_and_marks_read(world, team, web_as):
    start(world, team)
    client = web_as(team.user("reviewer"))
    page = client.get("/review/notifications/").content.decode()
    assert "added you to review session" in page and 'id="unread"' in page
    client.post("/review/notifications/")
    assert Notification.objects.filter(user=team.user("reviewer"), read_at=None).count() == 0
    assert ReviewSession.objects.count() == 1


def test_a_cluster_has_its_discussion_on_its_table(world, team, web_as):
    dataset, run, _rows = world
    client = web_as(team.user("reviewer"))
    query = '{"field": "cluster", "op": "=", "value": 2}'
    response = client.post(
        "/review/comments/",
        {
            "dataset": dataset.pk,
            "run": run.pk,
            "cluster": 2,
            "body": "All _refunds_?",
            "back": f"/datasets/{dataset.pk}/samples/?q={query}",
        },
    )
    assert response.status_code == 302
    comment = Comment.objects.get()
    assert comment.cluster == 2 and comment.run_id == run.pk and comment.sample_id is None
    page = client.get(f"/datasets/{dataset.pk}/samples/", {"q": query}).content.decode()
    assert "Cluster 2 of run" in page and "<em>refunds</em>" in page
    other = client.get(
        f"/datasets/{dataset.pk}/samples/", {"q": query.replace("2", "3")}
    ).content.decode()
    assert "<em>refunds</em>" not in other


def test_the_feed_holds_review_versions_and_runs_newest_first(world, team, web_as):
    dataset, run, _rows = world
    session = start(world, team)
    item = session.items.select_related("sample").first()
    for persona in ("reviewer", "scientist"):
        services.vote_cast(
            session=session, sample=item.sample, voter=team.user(persona), choice="remove"
        )
    closed = services.session_close(session=session, by=team.user("owner"))
    services.decisions_apply(session=closed, by=team.user("owner"), message="cleanup")
    feed = [i.verb for i in review_selectors.feed(team.project)]
    assert feed[0].startswith("applied the decisions")
    assert any(v.startswith("committed version") and "cleanup" in v for v in feed)
    assert any(v.startswith("started review session") for v in feed)
    page = web_as(team.user("viewer")).get(f"/review/projects/{team.project.slug}/activity/")
    assert "closed review session" in page.content.decode()


def test_adjudicating_a_sample_that_is_not_a_number_is_refused_not_a_500(world, team, web_as):
    session = start(world, team)
    services.session_close(session=session, by=team.user("owner"))
    response = web_as(team.user("manager")).post(
        f"/review/sessions/{session.pk}/adjudicate/",
        {"sample": "x", "outcome": "keep", "reason": "r"},
        follow=True,
    )
    assert response.status_code == 200 and "Pick a sample" in response.content.decode()
    assert not Decision.objects.filter(source="adjudicator").exists()


def test_the_adjudication_form_starts_with_no_outcome_and_refuses_none(world, team, web_as):
    import re

    session = start(world, team)
    services.session_close(session=session, by=team.user("owner"))
    client = web_as(team.user("manager"))
    page = client.get(f"/review/sessions/{session.pk}/").content.decode()
    outcome = re.search(r'<select name="outcome"[^>]*>(.*?)</select>', page, re.S)
    assert outcome and "required" in outcome.group(0)
    options = re.findall(r"<option([^>]*)>", outcome.group(1))
    # The first option is an empty prompt and it is the one selected; no real choice is.
    assert 'value=""' in options[0] and "selected" in options[0]
    assert not any("selected" in o for o in options[1:])
    sample_id = session.items.first().sample_id
    for outcome_sent in ({}, {"outcome": ""}):
        response = client.post(
            f"/review/sessions/{session.pk}/adjudicate/",
            {"sample": sample_id, "reason": "looked at it", **outcome_sent},
            follow=True,
        )
        assert response.status_code == 200
        assert "Outcome: choose keep, relabel or remove" in response.content.decode()
    assert not Decision.objects.filter(source="adjudicator").exists()


def test_closing_a_session_asks_for_confirmation_and_an_htmx_post_is_redirected(
    world, team, web_as
):
    import re

    session = start(world, team)
    client = web_as(team.user("owner"))
    page = client.get(f"/review/sessions/{session.pk}/").content.decode()
    close = re.search(r"<form[^>]*/close/[^>]*>", page)
    assert close and "hx-confirm" in close.group(0) and "hx-post" in close.group(0)
    response = client.post(f"/review/sessions/{session.pk}/close/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/review/sessions/{session.pk}/"
    assert ReviewSession.objects.get(pk=session.pk).status == ReviewSession.Status.CLOSED


@pytest.mark.parametrize("persona", ["owner", "reviewer", "scientist"])
def test_the_queue_and_session_say_when_their_scores_are_of_an_older_version(
    persona, world, team, web_as
):
    dataset, run, _rows = world
    session = start(world, team)
    client = web_as(team.user(persona))
    pages = [f"/review/sessions/{session.pk}/", f"/review/sessions/{session.pk}/queue/"]
    for url in pages:  # the run scored the newest version: no banner
        assert 'id="stale-scores"' not in client.get(url).content.decode()
    dataset.versions.create(number=run.version + 1, stats={"relabelled": 2, "added": 1})
    for url in pages:
        html = client.get(url).content.decode()
        banner = html[html.index('id="stale-scores"') :].split("</div>")[0]
        assert f"from version {run.version}; the dataset is at version {run.version + 1}" in banner
        assert "2 samples relabelled, 1 added and 0 removed" in banner
        # The same rule as on the table: who may edit the data may score it again.
        may = team.members[persona].can(Cap.EDIT_DATA)
        assert ("Score version" in banner) == may, persona
        assert ("Someone who can edit the dataset" in banner) == (not may), persona
    # A closed session is a record of what was decided: no banner there.
    services.session_close(session=session, by=team.user("owner"))
    assert 'id="stale-scores"' not in client.get(pages[0]).content.decode()
