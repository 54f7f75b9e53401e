"""Reads for projects and memberships, always through the user asking."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from apps.projects.models import Membership, Project


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
