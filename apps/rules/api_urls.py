"""API routes of rules, included under /api/ in the api namespace."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
