"""The role → capability table: the one place that says what each role may do."""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    SCIENTIST = "scientist", "Data scientist"
    REVIEWER = "reviewer", "Reviewer"
    VENDOR = "vendor", "Vendor annotator"
    VIEWER = "viewer", "Viewer"


class Cap(StrEnum):
    VIEW = "view"  # see datasets, samples, scores, sessions, members
    MANAGE_MEMBERS = "manage_members"  # manage members and roles, delete the project
    EDIT_DATA = "edit_data"  # import data, log model runs, start scoring, export
    COMMENT = "comment"  # comment and vote
    CURATE = "curate"  # create review sessions, commit versions
    ADJUDICATE = "adjudicate"  # reviewers too when the project's consensus policy names them
    MANAGE_VENDORS = "manage_vendors"  # manage vendors and relabel batches
    QA = "qa"  # QA vendor work
    LABEL = "label"  # label items of batches assigned to the user's vendor
    REPORTS = "reports"  # viewers too when an owner shares a report
    AUTOMATE = "automate"  # create and change rules (an action needs its own capability too)
    INTEGRATIONS = "integrations"  # manage webhooks
    AUDIT = "audit"  # read and export the audit log


CAP_LABELS: dict[Cap, str] = {
    Cap.VIEW: "See datasets, samples, scores and sessions",
    Cap.MANAGE_MEMBERS: "Manage members and roles, delete the project",
    Cap.EDIT_DATA: "Import data, log model runs, start scoring, export",
    Cap.COMMENT: "Comment and vote",
    Cap.CURATE: "Create review sessions, commit versions",
    Cap.ADJUDICATE: "Adjudicate review decisions",
    Cap.MANAGE_VENDORS: "Manage vendors and relabel batches",
    Cap.QA: "QA vendor work",
    Cap.LABEL: "Label items of batches assigned to your vendor",
    Cap.REPORTS: "See reports",
    Cap.AUTOMATE: "Create and change rules",
    Cap.INTEGRATIONS: "Manage webhooks",
    Cap.AUDIT: "Read and export the audit log",
}

_ALL_STAFF = {Cap.VIEW, Cap.EDIT_DATA, Cap.COMMENT, Cap.CURATE, Cap.ADJUDICATE, Cap.AUTOMATE}

CAPABILITIES: dict[Role, frozenset[Cap]] = {
    Role.OWNER: frozenset(
        _ALL_STAFF
        | {Cap.MANAGE_MEMBERS, Cap.MANAGE_VENDORS, Cap.QA, Cap.REPORTS, Cap.INTEGRATIONS, Cap.AUDIT}
    ),
    Role.MANAGER: frozenset(
        _ALL_STAFF | {Cap.MANAGE_VENDORS, Cap.QA, Cap.REPORTS, Cap.INTEGRATIONS}
    ),
    Role.SCIENTIST: frozenset(_ALL_STAFF),
    Role.REVIEWER: frozenset({Cap.VIEW, Cap.COMMENT, Cap.QA}),
    # Fixed: a project owner cannot loosen the vendor row.
    Role.VENDOR: frozenset({Cap.LABEL}),
    Role.VIEWER: frozenset({Cap.VIEW}),
}


def role_can(role: str, cap: Cap) -> bool:
    return cap in CAPABILITIES[Role(role)]
