"""API routes of webhooks, included under /api/ in the api namespace."""

from django.urls import path

from apps.webhooks import api

urlpatterns = [
    path("projects/<int:pk>/webhooks/", api.WebhookListCreate.as_view(), name="webhooks"),
    path("webhooks/<int:webhook_id>/", api.WebhookDetail.as_view(), name="webhook"),
    path(
        "webhooks/<int:webhook_id>/deliveries/",
        api.WebhookDeliveries.as_view(),
        name="webhook_deliveries",
    ),
    path("webhooks/<int:webhook_id>/ping/", api.WebhookPing.as_view(), name="webhook_ping"),
    path(
        "webhooks/<int:webhook_id>/rotate-secret/",
        api.WebhookRotateSecret.as_view(),
        name="webhook_rotate_secret",
    ),
]
