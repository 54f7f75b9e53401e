"""Saved views: a named query of a dataset's samples, shared with the project by its link."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import Dataset


class SavedView(models.Model):
    """A named query and ordering of a dataset's samples, shared with the project by its URL."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=120)
    query = models.JSONField(default=dict, blank=True, help_text="A sample query (JSON predicate).")
    ordering = models.CharField(max_length=40, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table was made when saved views lived with datasets; it keeps its name.
        db_table = "datasets_savedview"
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["dataset", "name"], name="unique_view_name")]

    def __str__(self) -> str:
        return self.name
