from django.urls import path

from apps.webhooks import views

app_name = "webhooks"
urlpatterns = [
    path("projects/<slug:slug>/", views.project_webhooks, name="project"),
    path("<int:webhook_id>/", views.webhook_detail, name="detail"),
    path("<int:webhook_id>/<str:action>/", views.webhook_action, name="action"),
]
