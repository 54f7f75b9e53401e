"""API routes of production monitoring, included under /api/ in the api namespace."""

from django.urls import path

from apps.quality import monitoring_api

urlpatterns = [
    path(
        "datasets/<int:dataset_id>/production/",
        monitoring_api.ProductionSamples.as_view(),
        name="production",
    ),
    path(
        "datasets/<int:dataset_id>/drift-checks/",
        monitoring_api.DriftChecks.as_view(),
        name="drift_checks",
    ),
    path(
        "projects/<int:pk>/monitoring/",
        monitoring_api.MonitoringPolicyDetail.as_view(),
        name="monitoring",
    ),
]
