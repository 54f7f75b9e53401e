"""API routes of accounts, included under /api/ in the api namespace."""

from django.urls import path

from apps.accounts import api

urlpatterns = [
    path("me/", api.Me.as_view(), name="me"),
    path("tokens/", api.TokenListCreate.as_view(), name="tokens"),
    path("tokens/<int:token_id>/", api.TokenDetail.as_view(), name="token"),
]
