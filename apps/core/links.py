"""Links into the sample table: one query, ordering and run, as the table's URL reads them back."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.urls import reverse


def sample_table_url(dataset_id: int | None, query=None, ordering: str = "", **params) -> str:
    """The sample table of the dataset showing `query` (a sample query; empty: every sample) in
    `ordering` (left out when it is the table's own, by id); other parameters, such as `run`
    or `view`, are added when they have a value."""
    found = {"q": json.dumps(query, ensure_ascii=False)} if query else {}
    if ordering and ordering != "id":
        found["ordering"] = ordering
    found.update({k: v for k, v in params.items() if v})
    base = reverse("datasets:samples", args=[dataset_id])
    return f"{base}?{urlencode(found)}" if found else base
