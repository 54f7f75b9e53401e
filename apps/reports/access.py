"""Who may read a project's reports: owners and managers by the role table, and viewers when an
owner shares them. Vendors and outsiders get 404; other members 403."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap, Role
from apps.projects.models import Membership
from apps.reports.models import ReportSharing


def may_see_reports(membership: Membership) -> bool:
    if membership.can(Cap.REPORTS):
        return True
    shared = ReportSharing.objects.filter(project=membership.project, viewers=True).exists()
    return membership.role == Role.VIEWER and shared


def get_report_membership(user, slug: str) -> Membership:
    membership = get_membership_for_user(user, slug=slug, need=Cap.VIEW)
    if not may_see_reports(membership):
        raise PermissionDenied(
            "Reports are for owners and managers, and viewers they share them with."
        )
    return membership
