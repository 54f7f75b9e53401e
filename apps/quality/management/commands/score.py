"""Start a scoring run of a dataset, or show the newest finished one."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from apps.datasets.models import Dataset
from apps.quality.models import RunStatus, ScoringRun
from apps.quality.selectors import latest_done_run
from apps.quality.services import scoring_run_execute, scoring_run_start


class Command(BaseCommand):
    help = "Score a dataset's newest version. Without --wait or --inline, queue it and return."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", type=int, required=True)
        parser.add_argument(
            "--wait", action="store_true", help="Wait for a worker to finish the run."
        )
        parser.add_argument("--inline", action="store_true", help="Run it in this process.")
        parser.add_argument(
            "--show", action="store_true", help="Only show the newest finished run."
        )
        parser.add_argument(
            "--timeout", type=int, default=3600, help="Seconds --wait waits (default 3600)."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object as the last line."
        )

    def handle(
        self,
        *args,
        dataset: int,
        wait: bool,
        inline: bool,
        show: bool,
        timeout: int,
        json: bool,
        **options,
    ):
        target = Dataset.objects.filter(pk=dataset).first()
        if target is None:
            raise CommandError(f"No dataset with id {dataset}.")
        if show:
            run = latest_done_run(target)
            if run is None:
                raise CommandError(f"Dataset {dataset} has no finished scoring run yet.")
            return self._report(run, json)
        run = scoring_run_start(dataset=target, by=None, enqueue=not inline)
        if inline:
            try:
                run = scoring_run_execute(run_id=run.pk)
            except Exception:  # noqa: BLE001 - the run is marked failed with the reason; report it
                run.refresh_from_db()
        elif wait:
            run = self._wait(run, timeout)
        else:
            self.stderr.write(f"Queued scoring run {run.pk}; a worker will take it.")
        self._report(run, json)
        if run.status == RunStatus.FAILED:
            raise CommandError(f"Scoring run {run.pk} failed: {run.error}")

    def _wait(self, run: ScoringRun, timeout: int) -> ScoringRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status in (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED):
                return run
            if run.status == RunStatus.QUEUED and time.monotonic() > deadline - timeout + 30:
                self.stderr.write(
                    "No worker has taken the run after 30 s: is a worker running? Still waiting…"
                )
            time.sleep(1)
        raise CommandError(
            f"Scoring run {run.pk} did not finish within {timeout} s (status: {run.status})."
        )

    def _report(self, run: ScoringRun, as_json: bool) -> None:
        result = {
            "run": run.pk,
            "dataset_id": run.dataset_id,
            "version": run.version,
            "status": run.status,
            "summary": run.summary,
            "skipped": run.skipped,
            "timings": run.timings,
            "error": run.error,
        }
        self.stderr.write(f"Scoring run {run.pk}: {run.status}.")
        if as_json:
            self.stdout.write(json.dumps(result, default=str))
