"""REST endpoint of the audit log: a project's events, newest first, filtered; or all of them
as CSV (?format=csv). Owners only, like the page."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError as ApiValidationError

from apps.audit.actions import FAMILIES, summary
from apps.audit.exporting import csv_response
from apps.audit.forms import AuditFilterForm
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_events_for_project
from apps.config.pagination import NewestFirstPagination
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", help_text="Username; empty: the system.")
    project = serializers.IntegerField(
        source="project_id", allow_null=True, help_text="None: an account-level event."
    )
    summary = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_id",
            "action",
            "project",
            "project_name",
            "target",
            "detail",
            "summary",
        ]

    def get_summary(self, event: AuditEvent) -> str:
        return summary(event.detail)


class ProjectAuditLog(generics.GenericAPIView):
    serializer_class = AuditEventSerializer
    pagination_class = NewestFirstPagination

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "action", str, description=f"A family ({', '.join(FAMILIES)}) or one action."
            ),
            OpenApiParameter("actor", str, description="A username."),
            OpenApiParameter("since", OpenApiTypes.DATE, description="From this day, included."),
            OpenApiParameter("until", OpenApiTypes.DATE, description="To this day, included."),
            OpenApiParameter(
                "format", str, enum=["json", "csv"], default="json", description="csv: all rows."
            ),
        ],
        responses={
            (200, "application/json"): AuditEventSerializer(many=True),
            (200, "text/csv"): bytes,
        },
    )
    def get(self, request, pk: int):
        """The project's audit events and its members' API token events, newest first."""
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.AUDIT)
        form = AuditFilterForm(request.query_params)
        if not form.is_valid():
            raise ApiValidationError(form.errors)
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "csv"):
            raise ApiValidationError({"format": ["Use json or csv."]})
        events = audit_events_for_project(membership.project, **form.filters())
        if fmt == "csv":
            return csv_response(membership.project, events, by=request.user, filters=form.filters())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)
