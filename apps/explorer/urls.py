"""Pages of the explorer. They keep the addresses and names they had as dataset pages: they are
served under /datasets/ in the `datasets` namespace (see apps/config/urls.py)."""

from django.urls import path

from apps.explorer.views import gallery, health, sample, table
from apps.explorer.views import map as map_views

urlpatterns = [
    path("query-language/", table.query_language, name="query_language"),
    path("<int:dataset_id>/samples/", table.sample_list, name="samples"),
    path("<int:dataset_id>/samples/bulk/", table.samples_bulk, name="samples_bulk"),
    path("<int:dataset_id>/samples/undo/", table.samples_undo, name="samples_undo"),
    path("<int:dataset_id>/samples/<int:sample_id>/", sample.sample_detail, name="sample"),
    path("<int:dataset_id>/gallery/", gallery.gallery, name="gallery"),
    path("<int:dataset_id>/gallery/order/", gallery.gallery_order, name="gallery_order"),
    path("<int:dataset_id>/gallery/cells/", gallery.gallery_cells, name="gallery_cells"),
    path("<int:dataset_id>/thumbs/<int:sample_id>/", gallery.thumbnail, name="thumbnail"),
    path("<int:dataset_id>/views/", table.saved_view_create, name="view_create"),
    path("<int:dataset_id>/health/", health.health, name="health"),
    path("<int:dataset_id>/map/", map_views.map_page, name="map"),
    path("<int:dataset_id>/map/points/", map_views.map_points, name="map_points"),
]
