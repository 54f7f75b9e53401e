from django.urls import path

from apps.rules import views

app_name = "rules"
urlpatterns = [
    path("datasets/<int:dataset_id>/", views.dataset_rules, name="dataset"),
    path("<int:rule_id>/", views.rule_page, name="detail"),
    path("<int:rule_id>/dry-run/", views.rule_dry_run, name="dry_run"),
    path("<int:rule_id>/<str:action>/", views.rule_action, name="action"),
]
