"""Scoring runs: starting one on a dataset's newest version, waiting for it, exporting scores."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from loupe_client.base import ClientBase, Ref, ref_id
from loupe_client.errors import LoupeError
from loupe_client.types import Progress, ScoringRun

SCORE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class ScoringMixin(ClientBase):
    """Scoring runs and their scores."""

    def score(self, dataset: Ref, *, model_run: int | None = None) -> ScoringRun:
        """Queue a scoring run of the dataset's newest version, with the probabilities of
        `model_run` (default: the dataset's newest model run). Poll it with wait_for_scoring."""
        body: dict[str, Any] = {} if model_run is None else {"model_run": int(model_run)}
        return cast(
            ScoringRun,
            self.http.json(
                "POST",
                f"datasets/{ref_id(dataset)}/scoring-runs/",
                ok=(202,),
                json_body=body,
                idempotent=False,  # a second request would queue a second run
            ),
        )

    def scoring_runs(self, dataset: Ref) -> list[ScoringRun]:
        """The dataset's scoring runs, newest first."""
        return list(self.http.pages(f"datasets/{ref_id(dataset)}/scoring-runs/"))

    def scoring_run(self, dataset: Ref, run: Ref) -> ScoringRun:
        """A scoring run: status (queued, running, done, failed, cancelled), stage, percent."""
        return cast(
            ScoringRun,
            self.http.json("GET", f"datasets/{ref_id(dataset)}/scoring-runs/{ref_id(run)}/"),
        )

    def wait_for_scoring(
        self,
        dataset: Ref,
        run: Ref,
        *,
        poll: float = 2.0,
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> ScoringRun:
        """Poll a scoring run until it is done (returns it); a failed or cancelled run raises
        LoupeError with the run as its detail. `progress("score", fraction)` hears of it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            got = self.scoring_run(dataset, run)
            if progress:
                progress("score", (got.get("percent") or 0) / 100)
            if got["status"] == "done":
                return got
            if got["status"] in ("failed", "cancelled"):
                reason = f": {got['error']}" if got.get("error") else ""
                raise LoupeError(f"Scoring run {got['id']} {got['status']}{reason}", detail=got)
            if deadline is not None and time.monotonic() > deadline:
                raise LoupeError(
                    f"Scoring run {got['id']} is still {got['status']} after {timeout} s; "
                    "is a worker running?",
                    detail=got,
                )
            time.sleep(poll)

    def export_scores(
        self,
        dataset: Ref,
        path: str | Path,
        *,
        run: Ref | None = None,
        format: str | None = None,  # noqa: A002 - the API's own word
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Download a finished scoring run's scores (default: the newest finished run) to
        `path`: one row per sample with its label, suggested label, scores and reasons. The
        format comes from the suffix unless given (csv or parquet; CSV when it says nothing)."""
        path = Path(path)
        fmt = format or SCORE_FORMATS.get(path.suffix.lower(), "csv")
        if run is None:
            runs = self.http.pages(f"datasets/{ref_id(dataset)}/scoring-runs/")
            newest = next((r for r in runs if r.get("status") == "done"), None)
            if newest is None:
                raise LoupeError("The dataset has no finished scoring run.", status=404)
            run = int(newest["id"])
        return self.http.download(
            f"datasets/{ref_id(dataset)}/scoring-runs/{ref_id(run)}/scores/",
            {"format": fmt},
            path,
            progress=progress,
        )
