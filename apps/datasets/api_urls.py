"""API routes of datasets, included under /api/ in the api namespace."""

from django.urls import path

from apps.datasets import api

urlpatterns = [
    path("projects/<int:pk>/datasets/", api.DatasetListCreate.as_view(), name="datasets"),
    path("datasets/<int:dataset_id>/", api.DatasetDetail.as_view(), name="dataset"),
    path(
        "datasets/<int:dataset_id>/imports/",
        api.ImportListCreate.as_view(),
        name="imports",
    ),
    path(
        "datasets/<int:dataset_id>/imports/<int:job_id>/",
        api.ImportDetail.as_view(),
        name="import",
    ),
    path("datasets/<int:dataset_id>/uploads/", api.UploadCreate.as_view(), name="uploads"),
    path(
        "datasets/<int:dataset_id>/uploads/<int:upload_id>/",
        api.UploadChunk.as_view(),
        name="upload",
    ),
    path(
        "datasets/<int:dataset_id>/uploads/<int:upload_id>/complete/",
        api.UploadComplete.as_view(),
        name="upload_complete",
    ),
    path(
        "datasets/<int:dataset_id>/samples/<int:sample_id>/neighbours/",
        api.SampleNeighbours.as_view(),
        name="sample_neighbours",
    ),
    path("datasets/<int:dataset_id>/tags/", api.TagList.as_view(), name="tags"),
    path(
        "datasets/<int:dataset_id>/samples/<int:sample_id>/relabel/",
        api.SampleRelabel.as_view(),
        name="sample_relabel",
    ),
    path(
        "datasets/<int:dataset_id>/samples/<int:sample_id>/remove/",
        api.SampleRemove.as_view(),
        name="sample_remove",
    ),
    path("datasets/<int:dataset_id>/draft/", api.Draft.as_view(), name="draft"),
    path(
        "datasets/<int:dataset_id>/versions/",
        api.VersionListCreate.as_view(),
        name="versions",
    ),
    path(
        "datasets/<int:dataset_id>/versions/diff/",
        api.VersionDiff.as_view(),
        name="version_diff",
    ),
    path("datasets/<int:dataset_id>/export/", api.Export.as_view(), name="export"),
    path(
        "datasets/<int:dataset_id>/model-runs/",
        api.ModelRunList.as_view(),
        name="model_runs",
    ),
]
