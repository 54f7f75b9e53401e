"""API routes of quality, included under /api/ in the api namespace."""

from django.urls import path

from apps.quality import api

urlpatterns = [
    path(
        "projects/<int:pk>/scoring-policy/",
        api.ScoringPolicyDetail.as_view(),
        name="scoring_policy",
    ),
    path(
        "datasets/<int:dataset_id>/scoring-runs/",
        api.ScoringRunListCreate.as_view(),
        name="scoring_runs",
    ),
    path(
        "datasets/<int:dataset_id>/scoring-runs/<int:run_id>/",
        api.ScoringRunDetail.as_view(),
        name="scoring_run",
    ),
    path(
        "datasets/<int:dataset_id>/scoring-runs/<int:run_id>/scores/",
        api.ScoreExport.as_view(),
        name="scoring_run_scores",
    ),
]
