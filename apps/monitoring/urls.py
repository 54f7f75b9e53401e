"""The drift page's routes. They sit under a dataset's address and keep their names in the
datasets namespace, so apps/config/urls.py joins them to the dataset routes."""

from django.urls import path

from apps.monitoring import views

urlpatterns = [
    path("<int:dataset_id>/drift/", views.drift_page, name="drift"),
    path("<int:dataset_id>/drift/policy/", views.drift_policy, name="drift_policy"),
    path("<int:dataset_id>/drift/check/", views.drift_check_now, name="drift_check"),
]
