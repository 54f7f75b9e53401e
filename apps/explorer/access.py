"""Fetch a saved view of a dataset the caller has already been allowed to see."""

from __future__ import annotations

from django.http import Http404

from apps.datasets.models import Dataset
from apps.explorer.models import SavedView


def get_saved_view_of_dataset(dataset: Dataset, view_id: int) -> SavedView:
    view = (
        SavedView.objects.select_related("created_by").filter(dataset=dataset, pk=view_id).first()
    )
    if view is None:
        raise Http404("No such saved view.")
    return view
