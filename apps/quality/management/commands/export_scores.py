"""Export a scoring run's per-sample scores (CSV or Parquet, by OUT's suffix)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.datasets.models import Dataset
from apps.quality.exporting import SCORE_FORMATS, export_scores
from apps.quality.models import RunStatus


class Command(BaseCommand):
    help = "Write one row per sample of a scoring run (default: the dataset's newest finished run) to OUT."

    def add_arguments(self, parser):
        parser.add_argument("out")
        parser.add_argument("--dataset", type=int, required=True)
        parser.add_argument(
            "--run", type=int, help="Scoring run id; default: the newest finished one."
        )

    def handle(self, *args, out: str, dataset: int, run: int | None, **options):
        target = Dataset.objects.filter(pk=dataset).first()
        if target is None:
            raise CommandError(f"No dataset with id {dataset}.")
        runs = target.scoring_runs.filter(status=RunStatus.DONE)
        chosen = runs.filter(pk=run).first() if run else runs.first()
        if chosen is None:
            raise CommandError(
                f"Dataset {dataset} has no finished scoring run {run}."
                if run
                else f"Dataset {dataset} has no finished scoring run yet (manage.py score --dataset {dataset})."
            )
        fmt = Path(out).suffix.lower().lstrip(".")
        if fmt not in SCORE_FORMATS:
            raise CommandError(f"Name OUT .csv or .parquet, not {out!r}.")
        with Path(out).open("wb") as f:
            count = export_scores(run=chosen, fmt=fmt, out=f, by=None)
        self.stderr.write(f"Wrote scores of {count:,} samples (scoring run {chosen.pk}) to {out}.")
