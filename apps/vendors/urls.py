from django.urls import path

from apps.vendors import views

app_name = "vendors"
urlpatterns = [
    path("projects/<slug:slug>/", views.vendors, name="project"),
    path("datasets/<int:dataset_id>/batches/new/", views.batch_create, name="batch_create"),
    path("batches/<int:batch_id>/", views.batch_page, name="batch"),
    path(
        "batches/<int:batch_id>/<str:action>/",
        views.batch_action,
        name="batch_action",
    ),
    path(
        "batches/<int:batch_id>/items/<int:item_id>/review/", views.item_review, name="item_review"
    ),
    path("batches/<int:batch_id>/export", views.batch_export, name="export"),
    path("batches/<int:batch_id>/import", views.batch_import, name="import"),
    path("work/<int:batch_id>/", views.work, name="work"),
]
