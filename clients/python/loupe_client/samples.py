"""Exploring samples: every sample matching a query, page after page, and tagging them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from loupe_client.base import ClientBase, Ref, ref_id
from loupe_client.types import Sample


class SamplesMixin(ClientBase):
    """Samples and their scores."""

    def samples(
        self,
        dataset: Ref,
        *,
        q: Mapping[str, Any] | None = None,
        ordering: str | None = None,
        run: int | None = None,
        view: int | None = None,
    ) -> Iterator[Sample]:
        """Every sample matching a query, with its tags and the scoring run's scores, in the
        ordering asked for ("-mislabel_score": highest first); pages are fetched as needed.

        `q` is the sample query language (/datasets/query-language/ on the server), e.g.
        {"field": "likely_mislabeled", "op": "=", "value": True}; `view` a saved view's id.
        """
        params: dict[str, Any] = {}
        if q:
            params["q"] = json.dumps(q)
        for name, value in (("ordering", ordering), ("run", run), ("view", view)):
            if value is not None:
                params[name] = value
        yield from self.http.pages(f"datasets/{ref_id(dataset)}/samples/", params)

    def tag(
        self,
        dataset: Ref,
        tag: str,
        *,
        q: Mapping[str, Any] | None = None,
        ids: Sequence[int] | None = None,
    ) -> int:
        """Tag every sample matching `q` (or those of `ids` among them); returns how many got
        the tag. Tagging twice changes nothing, so the call is safe to retry."""
        body: dict[str, Any] = {"action": "tag", "tag": tag, "q": dict(q or {})}
        if ids is not None:
            body["ids"] = [int(i) for i in ids]
        answer = self.http.json("POST", f"datasets/{ref_id(dataset)}/samples/bulk/", json_body=body)
        return int(answer["changed"])
