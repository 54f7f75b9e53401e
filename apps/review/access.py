"""Fetch a review session or comment the user may see, and say who may adjudicate."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap, Role
from apps.projects.models import Membership
from apps.review.models import Comment, ReviewSession
from apps.review.services import policy_of


def get_session_for_user(user, pk: int, *, need: Cap = Cap.VIEW) -> ReviewSession:
    """The session, if the user's role in its project may `need`; 404 if they may not see it."""
    session = (
        ReviewSession.objects.select_related("project", "dataset", "created_by")
        .filter(pk=pk)
        .first()
    )
    if session is None:
        raise Http404("No such review session.")
    get_membership_for_user(user, pk=session.project_id, need=need)
    return session


def get_comment_for_user(user, pk: int, *, need: Cap = Cap.VIEW, own: bool = False) -> Comment:
    """The comment, if the user may `need` in its project; with `own`, only its author's
    (anyone else who may see it gets 403)."""
    comment = Comment.objects.select_related("project", "author").filter(pk=pk).first()
    if comment is None:
        raise Http404("No such comment.")
    get_membership_for_user(user, pk=comment.project_id, need=need)
    if own and comment.author_id != user.pk:
        raise PermissionDenied("Only its author can change a comment.")
    return comment


def may_adjudicate(membership: Membership) -> bool:
    """Curators adjudicate; reviewers too when the project's consensus policy names them."""
    if membership.can(Cap.ADJUDICATE):
        return True
    return membership.role == Role.REVIEWER and policy_of(membership.project).reviewers_adjudicate


def check_adjudicator(user, project_id: int) -> Membership:
    membership = get_membership_for_user(user, pk=project_id, need=Cap.VIEW)
    if not may_adjudicate(membership):
        raise PermissionDenied("Your role in this project does not adjudicate.")
    return membership
