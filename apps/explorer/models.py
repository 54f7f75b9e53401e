"""Saved views: a named query of a dataset's samples, shared with the project by its link."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import Dataset


class SavedView(models.Model):
    """A named query, ordering and columns of a dataset's samples, shared by its URL."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=120)
    query = models.JSONField(default=dict, blank=True, help_text="A sample query (JSON predicate).")
    # An ordering names a metadata key of up to 200 characters.
    ordering = models.CharField(max_length=240, blank=True, default="")
    columns = models.JSONField(
        default=list, blank=True, help_text="The table's columns, in order (empty: the default)."
    )
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
