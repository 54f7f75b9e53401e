"""Collaboration pages: review sessions (page, live progress, keyboard queue, close, decisions),
comments, notifications, the activity feed and the consensus policy."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from apps import annotations as task_types
from apps.accounts.models import User
from apps.datasets.access import get_dataset_for_user, get_sample_of_dataset
from apps.explorer import selectors as explorer_selectors
from apps.explorer.actions import selection_of_form
from apps.explorer.query import QueryError
from apps.explorer.views import stale_context
from apps.projects.access import get_membership_for_user, get_project_for_user
from apps.projects.capabilities import Cap
from apps.review import selectors, services
from apps.review.access import (
    check_adjudicator,
    get_comment_for_user,
    get_session_for_user,
    may_adjudicate,
)
from apps.review.models import Choice, ReviewSession


def _messages_of(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _back(request, fallback: str) -> str:
    back = request.POST.get("back") or ""
    return back if url_has_allowed_host_and_scheme(back, {request.get_host()}) else fallback


def _site(request) -> str:
    return request.build_absolute_uri("/")


# --- Sessions ---------------------------------------------------------------------------------


@login_required
@require_POST
def session_create(request, dataset_id: int):
    """A session from the sample table: its query (or the ticked samples), named participants."""
    dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.CURATE)
    back = _back(request, reverse("datasets:samples", args=[dataset.pk]))
    try:
        selection = selection_of_form(dataset, request.POST)
        names = [n.strip() for n in request.POST.get("participants", "").replace(",", " ").split()]
        people = list(User.objects.filter(username__in=[n for n in names if n]))
        missing = {n for n in names if n} - {u.username for u in people}
        if missing:
            raise ValidationError(f"No such user: {', '.join(sorted(missing))}.")
        session = services.session_create(
            dataset=dataset,
            by=request.user,
            title=request.POST.get("title", ""),
            query=selection.query,
            ordering=selection.ordering,
            run=selection.run,
            participants=people,
            blind=request.POST.get("blind") == "on",
            due_date=request.POST.get("due_date") or None,
            ids=selection.ids,
            site_url=_site(request),
        )
    except (QueryError, ValidationError) as exc:
        messages.error(request, str(exc) if isinstance(exc, QueryError) else _messages_of(exc))
        return redirect(back)
    messages.success(request, f"Review session “{session.title}” started.")
    return redirect("review:session", session_id=session.pk)


def _session_context(request, session: ReviewSession) -> dict:
    membership = get_membership_for_user(request.user, pk=session.project_id)
    return {
        "session": session,
        "dataset": session.dataset,
        "project": session.project,
        "progress": selectors.progress(session),
        "is_participant": session.participant_set.filter(user=request.user).exists(),
        "can_curate": membership.can(Cap.CURATE),
        "can_comment": membership.can(Cap.COMMENT),
        "can_adjudicate": may_adjudicate(membership),
    }


def _stale_of(request, session: ReviewSession) -> dict:
    """The stale-scores banner while the session is open: its queue shows the suggestions and
    flags of the session's run, which newer versions may have made out of date."""
    if not session.is_open:
        return {"stale": None, "can_score": False}
    return stale_context(request, session.dataset, session.run)


@login_required
@require_safe
def session_page(request, session_id: int):
    session = get_session_for_user(request.user, session_id)
    context = _session_context(request, session)
    items = list(session.items.select_related("sample")[:500])
    counts = {}
    if not session.blind or not session.is_open:
        by_sample: dict[int, list] = {}
        for vote in session.votes.all():
            by_sample.setdefault(vote.sample_id, []).append(vote)
        tally = task_types.of(session.dataset).review.tally
        counts = {i.sample_id: tally(by_sample.get(i.sample_id, [])) for i in items}
    decisions = {d.sample_id: d for d in selectors.decisions_of(session)}
    context.update(
        {
            "items": [
                {
                    "item": i,
                    "tally": counts.get(i.sample_id),
                    "decision": decisions.get(i.sample_id),
                }
                for i in items
            ],
            "decisions": list(decisions.values()),
            "pending": sum(
                1 for d in decisions.values() if d.event_id is None and d.outcome != Choice.KEEP
            ),
            "comments": selectors.thread(session=session),
            "comment_target": {"session": session.pk},
            "labels": session.dataset.labels,
            **_stale_of(request, session),
        }
    )
    return render(request, "review/session.html", context)


@login_required
@require_safe
def session_progress(request, session_id: int):
    """The progress panel, polled by every open page of the session: live without reloads."""
    session = get_session_for_user(request.user, session_id)
    if request.GET.get("here") == "1":
        services.participant_seen(session=session, user=request.user)
    return render(request, "review/progress.html", _session_context(request, session))


@login_required
@require_safe
def queue(request, session_id: int):
    """One sample of the queue at a time, driven by the keyboard."""
    session = get_session_for_user(request.user, session_id)
    context = _session_context(request, session)
    total = context["progress"]["items"]
    position = request.GET.get("i", "")
    if not position.isdigit():
        # Start at the first sample this participant has not voted on.
        voted = session.votes.filter(voter=request.user).values("sample_id")
        first = session.items.exclude(sample_id__in=voted).order_by("position").first()
        position = first.position if first else 0
    position = min(int(position), max(total - 1, 0))
    item = selectors.item_at(session, position)
    if item is None:
        messages.error(request, "The session's queue is empty.")
        return redirect("review:session", session_id=session.pk)
    services.participant_seen(session=session, user=request.user)
    sample = item.sample
    mine = session.votes.filter(voter=request.user, sample=sample).first()
    score = explorer_selectors.scores_of_samples(session.run, [sample.pk]).get(sample.pk)
    context.update(
        {
            "item": item,
            "sample": sample,
            "position": position,
            "number": position + 1,
            "previous": position - 1 if position > 0 else None,
            "next": position + 1 if position + 1 < total else None,
            "mine": mine,
            "tally": selectors.visible_tally(session, sample.pk, request.user),
            "score": score,
            "labels": list(enumerate(session.dataset.labels[:9], start=1)),
            "more_labels": session.dataset.labels[9:],
            "comments": selectors.thread(sample=sample),
            "comment_target": {"dataset": session.dataset_id, "sample": sample.pk},
            **_stale_of(request, session),
        }
    )
    return render(request, "review/queue.html", context)


@login_required
@require_POST
def vote(request, session_id: int):
    session = get_session_for_user(request.user, session_id, need=Cap.COMMENT)
    position = request.POST.get("position", "0")
    position = int(position) if position.isdigit() else 0
    item = selectors.item_at(session, position)
    if item is None:
        messages.error(request, "No such sample in the queue.")
        return redirect("review:queue", session_id=session.pk)
    try:
        services.vote_cast(
            session=session,
            sample=item.sample,
            voter=request.user,
            choice=request.POST.get("choice", ""),
            label=request.POST.get("label") or None,
        )
    except ValidationError as exc:
        messages.error(request, _messages_of(exc))
        return redirect(reverse("review:queue", args=[session.pk]) + f"?i={position}")
    total = session.items.count()
    following = position + 1 if position + 1 < total else position
    return redirect(reverse("review:queue", args=[session.pk]) + f"?i={following}")


@login_required
@require_POST
def session_close(request, session_id: int):
    session = get_session_for_user(request.user, session_id, need=Cap.CURATE)
    try:
        session = services.session_close(session=session, by=request.user, site_url=_site(request))
    except ValidationError as exc:
        messages.error(request, _messages_of(exc))
    else:
        s = session.summary
        messages.success(
            request,
            ngettext(
                "Closed: %(n)s decision by consensus, %(open)s without.",
                "Closed: %(n)s decisions by consensus, %(open)s without.",
                s["decided"],
            )
            % {"n": s["decided"], "open": s["disagreement_count"]},
        )
    # Closing posts through htmx for its confirmation dialog: the page reloads.
    target = reverse("review:session", args=[session.pk])
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@login_required
@require_POST
def adjudicate(request, session_id: int):
    session = get_session_for_user(request.user, session_id)
    check_adjudicator(request.user, session.project_id)
    sample_id = request.POST.get("sample", "")
    if not sample_id.isdigit():
        messages.error(request, "Pick a sample of the session.")
        return redirect(reverse("review:session", args=[session.pk]) + "#decisions")
    sample = get_sample_of_dataset(session.dataset, int(sample_id))
    try:
        services.decision_adjudicate(
            dataset=session.dataset,
            sample=sample,
            by=request.user,
            outcome=request.POST.get("outcome", ""),
            label=request.POST.get("label") or None,
            reason=request.POST.get("reason", ""),
            session=session,
        )
    except ValidationError as exc:
        messages.error(request, _messages_of(exc))
    else:
        messages.success(request, f"Decision on {sample.external_id} recorded.")
    return redirect(reverse("review:session", args=[session.pk]) + "#decisions")


@login_required
@require_POST
def apply_decisions(request, session_id: int):
    session = get_session_for_user(request.user, session_id, need=Cap.CURATE)
    try:
        version = services.decisions_apply(
            session=session, by=request.user, message=request.POST.get("message", "")
        )
    except ValidationError as exc:
        messages.error(request, _messages_of(exc))
        return redirect("review:session", session_id=session.pk)
    messages.success(request, f"Decisions applied as version {version.number}.")
    return redirect("datasets:versions", dataset_id=session.dataset_id)


# --- Comments ---------------------------------------------------------------------------------


@login_required
@require_POST
def comment_create(request):
    """A comment on a sample (dataset + sample), a session, or a cluster (run + cluster)."""
    post = request.POST
    back_default = reverse("projects:list")
    try:
        if post.get("parent"):
            parent = get_comment_for_user(request.user, int(post["parent"]), need=Cap.COMMENT)
            target = {"parent": parent, "project": parent.project}
        elif post.get("session"):
            session = get_session_for_user(request.user, int(post["session"]), need=Cap.COMMENT)
            target = {"session": session, "project": session.project}
        else:
            dataset = get_dataset_for_user(
                request.user, int(post.get("dataset") or 0), need=Cap.COMMENT
            )
            target = {"project": dataset.project, "dataset": dataset}
            if post.get("sample"):
                target["sample"] = get_sample_of_dataset(dataset, int(post["sample"]))
            elif post.get("cluster") and post.get("run"):
                run = dataset.scoring_runs.filter(pk=int(post["run"])).first()
                target.update({"run": run, "cluster": int(post["cluster"])})
        services.comment_create(
            author=request.user, body=post.get("body", ""), site_url=_site(request), **target
        )
    except (ValidationError, ValueError) as exc:
        messages.error(
            request, _messages_of(exc) if isinstance(exc, ValidationError) else "Bad comment."
        )
    return redirect(_back(request, back_default) + "#comments")


@login_required
@require_POST
def comment_edit(request, comment_id: int):
    comment = get_comment_for_user(request.user, comment_id, need=Cap.COMMENT, own=True)
    try:
        if request.POST.get("delete") == "1":
            services.comment_delete(comment=comment, by=request.user)
        else:
            services.comment_edit(
                comment=comment, by=request.user, body=request.POST.get("body", "")
            )
    except ValidationError as exc:
        messages.error(request, _messages_of(exc))
    return redirect(_back(request, reverse("projects:list")) + "#comments")


@login_required
@require_safe
def mentionable(request, dataset_id: int):
    """Who an @mention in a comment on this dataset's things may name, for the comment box's
    suggestions: only to people who may comment there."""
    dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.COMMENT)
    prefix = request.GET.get("q", "")[:150]
    return JsonResponse(
        {"members": selectors.mentionable(dataset.project, by=request.user, prefix=prefix)}
    )


# --- Notifications, activity, policy ------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request):
    if request.method == "POST":
        services.notifications_read(user=request.user)
        return redirect("review:notifications")
    return render(
        request,
        "review/notifications.html",
        {"notifications": selectors.notifications_of(request.user)},
    )


@login_required
@require_safe
def activity(request, slug: str):
    project = get_project_for_user(request.user, slug=slug, need=Cap.VIEW)
    sessions = ReviewSession.objects.filter(project=project).select_related("dataset")
    return render(
        request,
        "review/activity.html",
        {
            "project": project,
            "feed": selectors.feed(project),
            "sessions": sessions.filter(Q(status=ReviewSession.Status.OPEN))[:20],
            "policy": services.policy_of(project),
            "can_manage": get_membership_for_user(request.user, pk=project.pk).can(
                Cap.MANAGE_MEMBERS
            ),
        },
    )


@login_required
@require_POST
def policy(request, slug: str):
    project = get_project_for_user(request.user, slug=slug, need=Cap.MANAGE_MEMBERS)
    try:
        services.policy_update(
            project=project,
            min_votes=int(request.POST.get("min_votes", "2")),
            agreement=float(request.POST.get("agreement", "0.66")),
            reviewers_adjudicate=request.POST.get("reviewers_adjudicate") == "on",
        )
    except (ValidationError, ValueError) as exc:
        messages.error(
            request, _messages_of(exc) if isinstance(exc, ValidationError) else "Give numbers."
        )
    else:
        messages.success(request, "Consensus policy saved.")
    return redirect("review:activity", slug=project.slug)
