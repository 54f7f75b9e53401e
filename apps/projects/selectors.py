"""Reads for projects and memberships, always through the user asking."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.http import Http404
from django.utils import timezone

from apps.accounts.services import token_digest
from apps.projects.models import Invitation, Membership, Project


def projects_for_user(user) -> QuerySet[Project]:
    return (
        Project.objects.filter(memberships__user=user)
        .annotate(member_count=Count("memberships", distinct=True))
        .order_by("name", "id")
    )


def memberships_for_user(user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("project").order_by("project__name")


def members_of_project(project: Project) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(project=project).select_related("user").order_by("user__username")
    )


def pending_invitations_of_project(project: Project) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        project=project, accepted_at=None, revoked_at=None, expires_at__gt=timezone.now()
    ).select_related("invited_by")


def get_invitation_by_key(key: str) -> Invitation:
    """The pending invitation whose link carries `key`; anything else is a 404."""
    invitation = (
        Invitation.objects.select_related("project", "invited_by")
        .filter(digest=token_digest(key))
        .first()
    )
    if invitation is None or not invitation.is_pending:
        raise Http404("This invitation has expired, was revoked or has already been used.")
    return invitation
