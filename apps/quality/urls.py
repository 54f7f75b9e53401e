from django.urls import path

from apps.quality import views

app_name = "quality"
urlpatterns = [
    path("", views.methods, name="methods"),
]

# Quality's pages of a dataset, served under /datasets/ in the `datasets` namespace.
dataset_urlpatterns = [
    path("<int:dataset_id>/scoring/", views.scoring, name="scoring"),
    path("<int:dataset_id>/scoring/policy/", views.scoring_policy, name="scoring_policy"),
]
