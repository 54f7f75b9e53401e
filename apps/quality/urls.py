from django.urls import path

from apps.quality import monitoring_views, views

app_name = "quality"
urlpatterns = [
    path("", views.methods, name="methods"),
]

# Quality's pages of a dataset, served under /datasets/ in the `datasets` namespace.
dataset_urlpatterns = [
    path("<int:dataset_id>/scoring/", views.scoring, name="scoring"),
    path("<int:dataset_id>/drift/", monitoring_views.drift_page, name="drift"),
    path("<int:dataset_id>/drift/policy/", monitoring_views.drift_policy, name="drift_policy"),
    path("<int:dataset_id>/drift/check/", monitoring_views.drift_check_now, name="drift_check"),
]
