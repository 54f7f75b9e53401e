from django.urls import path

from apps.datasets import views
from apps.quality import views as quality_views

app_name = "datasets"
urlpatterns = [
    path("query-language/", views.query_language, name="query_language"),
    path("<int:dataset_id>/", views.dataset_detail, name="detail"),
    path("<int:dataset_id>/imports/<int:job_id>/", views.import_status, name="import_status"),
    path("<int:dataset_id>/samples/", views.sample_list, name="samples"),
    path("<int:dataset_id>/samples/bulk/", views.samples_bulk, name="samples_bulk"),
    path("<int:dataset_id>/samples/<int:sample_id>/", views.sample_detail, name="sample"),
    path("<int:dataset_id>/views/", views.saved_view_create, name="view_create"),
    path("<int:dataset_id>/versions/", views.versions, name="versions"),
    path("<int:dataset_id>/scoring/", views.scoring, name="scoring"),
    path("<int:dataset_id>/health/", views.health, name="health"),
    path("<int:dataset_id>/media/<path:path>", views.media, name="media"),
    path("<int:dataset_id>/map/", quality_views.map_page, name="map"),
    path("<int:dataset_id>/map/points/", quality_views.map_points, name="map_points"),
]
