"""Exploring samples: every sample matching a query, page after page or as one streamed file,
and tagging them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from loupe_client.base import ClientBase, Ref, ref_id
from loupe_client.types import Sample

EXPORT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def export_params(
    *,
    q: Mapping[str, Any] | None,
    columns: Sequence[str] | str | None,
    ordering: str | None,
    run: int | None,
    view: int | None,
    removed: bool,
    format: str,  # noqa: A002 - the API's own word
) -> dict[str, Any]:
    """The query parameters of the sample export, as the sample table names them."""
    params: dict[str, Any] = {"format": format}
    if q:
        params["q"] = json.dumps(q)
    if columns:
        params["columns"] = columns if isinstance(columns, str) else ",".join(columns)
    for name, value in (("ordering", ordering), ("run", run), ("view", view)):
        if value is not None:
            params[name] = value
    if removed:
        params["removed"] = "true"
    return params


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

    def export_samples(
        self,
        dataset: Ref,
        path: str | Path,
        *,
        q: Mapping[str, Any] | None = None,
        columns: Sequence[str] | str | None = None,
        ordering: str | None = None,
        run: int | None = None,
        view: int | None = None,
        removed: bool = False,
        format: str | None = None,  # noqa: A002 - the API's own word
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Download every sample matching a query, in its ordering, with the chosen columns
        (what the sample table shows) to `path`, as the server streams it: CSV or Parquet,
        from the suffix unless given (CSV when it says nothing). `columns` are the table's
        names (external_id, label, tags, any score, metadata.KEY, similarity); default: the
        table's. `progress(bytes so far)` is told as it arrives."""
        path = Path(path)
        fmt = format or EXPORT_FORMATS.get(path.suffix.lower(), "csv")
        params = export_params(
            q=q, columns=columns, ordering=ordering, run=run, view=view, removed=removed, format=fmt
        )
        return self.http.download(
            f"datasets/{ref_id(dataset)}/samples/export/", params, path, progress=progress
        )

    def export_stream(
        self,
        dataset: Ref,
        *,
        q: Mapping[str, Any] | None = None,
        columns: Sequence[str] | str | None = None,
        ordering: str | None = None,
        run: int | None = None,
        view: int | None = None,
        removed: bool = False,
        format: str = "csv",  # noqa: A002 - the API's own word
    ) -> Iterator[bytes]:
        """The bytes of `export_samples` as they arrive, for writing somewhere other than a
        file (standard output, say); a request refused raises LoupeError before the first."""
        params = export_params(
            q=q,
            columns=columns,
            ordering=ordering,
            run=run,
            view=view,
            removed=removed,
            format=format,
        )
        resp = self.http.request(
            "GET", f"datasets/{ref_id(dataset)}/samples/export/", params=params, stream=True
        )
        with resp:
            yield from resp.iter_content(1024 * 1024)

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
