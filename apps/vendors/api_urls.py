"""API routes of vendors, included under /api/ in the api namespace."""

from django.urls import path

from apps.vendors import api

urlpatterns = [
    path("projects/<int:pk>/vendors/", api.VendorList.as_view(), name="vendors"),
    path("projects/<int:pk>/vendors/links/", api.VendorLink.as_view(), name="vendor_links"),
    path("datasets/<int:dataset_id>/batches/", api.BatchListCreate.as_view(), name="batches"),
    path(
        "projects/<int:pk>/batch-acceptance/",
        api.AcceptanceLevel.as_view(),
        name="batch_acceptance",
    ),
    path("batches/<int:batch_id>/", api.BatchDetail.as_view(), name="batch"),
    path("batches/<int:batch_id>/action/", api.BatchAction.as_view(), name="batch_action"),
    path("batches/<int:batch_id>/export/", api.BatchExport.as_view(), name="batch_export"),
    path("batches/<int:batch_id>/import/", api.BatchImport.as_view(), name="batch_import"),
    path("projects/<int:pk>/work/", api.WorkBatches.as_view(), name="work_batches"),
    path("work/<int:batch_id>/items/", api.WorkItems.as_view(), name="work_items"),
]
