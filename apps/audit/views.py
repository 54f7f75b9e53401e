"""The audit log page of a project: filters, pages of events newest first, and CSV download.
Owners only: other members get 403, vendors and outsiders 404."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_safe

from apps.audit.actions import FAMILY_CHOICES, label, summary, tone
from apps.audit.exporting import csv_response
from apps.audit.forms import AuditFilterForm
from apps.audit.selectors import audit_events_for_project
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.projects.selectors import members_of_project

PAGE_SIZE = 50


@login_required
@require_safe
def project_log(request, slug: str):
    membership = get_membership_for_user(request.user, slug=slug, need=Cap.AUDIT)
    project = membership.project
    form = AuditFilterForm(request.GET)
    form.is_valid()  # a bad field is shown and left out; the others still apply
    filters = form.filters()
    events = audit_events_for_project(project, **filters)
    if request.GET.get("csv"):
        return csv_response(project, events, by=request.user, filters=filters)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    for key in ("page", "csv"):
        query.pop(key, None)
    context = {
        "project": project,
        "form": form,
        "families": FAMILY_CHOICES,
        "members": members_of_project(project),
        "page": page,
        "rows": [
            {
                "event": e,
                "label": label(e.action),
                "tone": tone(e.action),
                "summary": summary(e.detail),
            }
            for e in page
        ],
        "query": query.urlencode(),
        "filtered": bool(filters),
    }
    template = "audit/project.html#events" if request.htmx else "audit/project.html"
    return render(request, template, context)
