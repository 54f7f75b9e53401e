"""Pages of a dataset. Other apps' pages of a dataset (the explorer's, quality's) join these
under /datasets/ in the same `datasets` namespace (see apps/config/urls.py)."""

from django.urls import path

from apps.datasets import views

app_name = "datasets"
urlpatterns = [
    path("<int:dataset_id>/", views.dataset_detail, name="detail"),
    path("<int:dataset_id>/imports/preview/", views.import_preview, name="import_preview"),
    path("<int:dataset_id>/imports/<int:job_id>/", views.import_status, name="import_status"),
    path("<int:dataset_id>/sample-file.csv", views.sample_file, name="sample_file"),
    path("<int:dataset_id>/versions/", views.versions, name="versions"),
    path("<int:dataset_id>/media/<path:path>", views.media, name="media"),
]

# A project's pages that belong to the datasets, joined to the project's own under /projects/
# in the `projects` namespace.
project_urlpatterns = [
    path("<slug:slug>/datasets/new/", views.dataset_create, name="dataset_create"),
]
