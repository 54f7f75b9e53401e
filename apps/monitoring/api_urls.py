"""API routes of production monitoring, included under /api/ in the api namespace."""

from django.urls import path

from apps.monitoring import api

urlpatterns = [
    path(
        "datasets/<int:dataset_id>/production/",
        api.ProductionSamples.as_view(),
        name="production",
    ),
    path(
        "datasets/<int:dataset_id>/drift-checks/",
        api.DriftChecks.as_view(),
        name="drift_checks",
    ),
    path(
        "projects/<int:pk>/monitoring/",
        api.MonitoringPolicyDetail.as_view(),
        name="monitoring",
    ),
]
