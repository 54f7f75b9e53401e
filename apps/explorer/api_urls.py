"""API routes of explorer, included under /api/ in the api namespace."""

from django.urls import path

from apps.explorer import api

urlpatterns = [
    path("datasets/<int:dataset_id>/samples/", api.SampleList.as_view(), name="samples"),
    path(
        "datasets/<int:dataset_id>/samples/export/",
        api.SampleExport.as_view(),
        name="samples_export",
    ),
    path(
        "datasets/<int:dataset_id>/samples/<int:sample_id>/",
        api.SampleDetail.as_view(),
        name="sample",
    ),
    path(
        "datasets/<int:dataset_id>/samples/bulk/",
        api.SampleBulk.as_view(),
        name="samples_bulk",
    ),
    path("datasets/<int:dataset_id>/views/", api.SavedViewListCreate.as_view(), name="views"),
    path(
        "datasets/<int:dataset_id>/views/<int:view_id>/",
        api.SavedViewDetail.as_view(),
        name="view",
    ),
]
