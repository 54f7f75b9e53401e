"""Queues of samples (a review session's items, a batch's)."""

from __future__ import annotations

from django.db.models import Max

from apps.datasets.models import Sample


def queue_append(*, items, dataset_id: int, samples, limit: int, make) -> list[Sample]:
    """Append samples of the dataset to the end of an ordered queue (a review session's items,
    a batch's), skipping those already in it, up to `limit` items in all. `items` is the
    queue's related manager; `make(sample, position)` builds one item. Returns those added."""
    present = set(items.values_list("sample_id", flat=True))
    fresh = [s for s in samples if s.dataset_id == dataset_id and s.pk not in present]
    fresh = fresh[: max(0, limit - len(present))]
    start = (items.aggregate(m=Max("position"))["m"] or -1) + 1
    items.model.objects.bulk_create(make(s, start + i) for i, s in enumerate(fresh))
    return fresh
