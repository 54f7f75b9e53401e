"""API routes of audit, included under /api/ in the api namespace."""

from django.urls import path

from apps.audit import api

urlpatterns = [
    path("projects/<int:pk>/audit/", api.ProjectAuditLog.as_view(), name="audit"),
]
