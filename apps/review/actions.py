"""Review's action on a selection: put it in a review session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from apps.datasets.models import Dataset
from apps.explorer.actions import Action, Selection
from apps.explorer.actions.checks import MAX_ID, names, positive_int, text
from apps.projects.capabilities import Cap
from apps.projects.models import Membership
from apps.review.models import ReviewSession
from apps.review.services import SESSION_MAX_ITEMS, session_create, session_items_add


class ReviewSessionAction(Action):
    """Add the samples to an open session (named, or the one made the first time, kept in the
    state), or start one with the named reviewers."""

    name = "review"
    cap = Cap.CURATE
    takes = ("session", "title", "participants", "blind")
    label = "Add to a review session"
    rule = True
    form_template = "review/rule_action_review.html"
    form_lists = ("participants",)

    def clean(self, dataset: Dataset, settings: Mapping[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        if settings.get("session") not in (None, ""):
            session_id = positive_int(settings["session"], "session", high=MAX_ID)
            session = ReviewSession.objects.filter(pk=session_id, dataset=dataset).first()
            if session is None:
                raise ValidationError({"session": "No such review session in this dataset."})
            if session.status != ReviewSession.Status.OPEN:
                raise ValidationError({"session": f"Session “{session.title}” is closed."})
            clean["session"] = session.pk
            return clean
        usernames = names(settings.get("participants") or [], "participants", "usernames")
        if not usernames:
            raise ValidationError(
                {"participants": "Name the reviewers of the new session (usernames)."}
            )
        members = dict(
            Membership.objects.filter(
                project=dataset.project, user__username__in=usernames
            ).values_list("user__username", "role")
        )
        for username in usernames:
            if username not in members or not Membership(role=members[username]).can(Cap.COMMENT):
                raise ValidationError({"participants": f"{username} cannot vote in this project."})
        clean["participants"] = usernames
        if title := text(settings.get("title"), "title", limit=200):
            clean["title"] = title
        clean["blind"] = bool(settings.get("blind", False))
        return clean

    def form_context(self, dataset: Dataset, membership: Membership) -> dict[str, Any]:
        voters = [
            m.user
            for m in Membership.objects.filter(project=dataset.project)
            .select_related("user")
            .order_by("user__username")
            if m.can(Cap.COMMENT)
        ]
        return {
            "sessions": ReviewSession.objects.filter(
                dataset=dataset, status=ReviewSession.Status.OPEN
            ).order_by("-created_at")[:50],
            "voters": voters,
        }

    def from_form(self, post: Any, prefix: str) -> dict[str, Any]:
        posted = super().from_form(post, prefix)
        settings = {k: v for k, v in posted.items() if k in ("session", "title")}
        # Reviewers and blindness are those of a new session: none are sent with an open one.
        if not settings.get("session"):
            settings["participants"] = post.getlist(f"{prefix}participants")
            settings["blind"] = post.get(f"{prefix}blind") == "on"
        return settings

    @staticmethod
    def _target(settings: Mapping[str, Any], state: Mapping[str, Any] | None):
        session_id = settings.get("session") or (state or {}).get("session")
        if not session_id:
            return None
        return ReviewSession.objects.filter(pk=session_id, status=ReviewSession.Status.OPEN).first()

    def room(
        self,
        dataset: Dataset,
        settings: Mapping[str, Any],
        *,
        room: int,
        state: Mapping[str, Any],
        detail: dict[str, Any],
    ) -> int:
        session = self._target(settings, state)
        if settings.get("session") and session is None:
            raise ValidationError({"session": "The rule's review session is closed or gone."})
        held = session.items.count() if session else 0
        detail["session"] = session.pk if session else None
        return min(room, SESSION_MAX_ITEMS - held)

    def perform(
        self,
        selection: Selection,
        settings: Mapping[str, Any],
        *,
        by: Any,
        detail: dict[str, Any],
        state: dict[str, Any] | None = None,
    ) -> int | None:
        session = self._target(settings, state)
        if session is not None:
            samples = selection.samples
            added = session_items_add(
                session=session,
                samples=samples if samples is not None else selection.first(SESSION_MAX_ITEMS),
                by=by,
            )
            detail["session"] = session.pk
            return added
        people = list(get_user_model().objects.filter(username__in=settings["participants"]))
        session = session_create(
            dataset=selection.dataset,
            by=by,
            title=settings.get("title") or "",
            query=selection.query,
            ordering=selection.ordering,
            run=selection.run,
            participants=people,
            blind=settings.get("blind", False),
            description=settings.get("description", ""),
            ids=selection.ids,
            samples=selection.samples,
        )
        if state is not None:
            state["session"] = session.pk
        detail["session"] = session.pk
        return None
