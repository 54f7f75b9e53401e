"""API routes of rules, included under /api/ in the api namespace."""

from django.urls import path

from apps.rules import api

urlpatterns = [
    path("datasets/<int:dataset_id>/rules/", api.RuleListCreate.as_view(), name="rules"),
    path("rules/<int:rule_id>/", api.RuleDetail.as_view(), name="rule"),
    path("rules/<int:rule_id>/dry-run/", api.RuleDryRun.as_view(), name="rule_dry_run"),
    path("rules/<int:rule_id>/runs/", api.RuleRuns.as_view(), name="rule_runs"),
    path("rules/<int:rule_id>/<str:action>/", api.RuleSwitch.as_view(), name="rule_switch"),
]
