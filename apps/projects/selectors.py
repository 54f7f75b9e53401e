"""Reads for projects and memberships, always through the user asking."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.utils import timezone

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


def pending_invitations() -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        accepted_at=None, revoked_at=None, declined_at=None, expires_at__gt=timezone.now()
    )


def pending_invitations_of_project(project: Project) -> QuerySet[Invitation]:
    return pending_invitations().filter(project=project).select_related("invited_by")


def pending_invitations_for_user(user) -> QuerySet[Invitation]:
    """Invitations to the user's own e-mail address that they may still accept or decline."""
    if not user.is_authenticated or not user.email:
        return Invitation.objects.none()
    return (
        pending_invitations()
        .filter(email__iexact=user.email)
        .select_related("project", "invited_by")
        .order_by("-created_at", "-id")
    )
