"""Export a dataset version as CSV, JSONL or Parquet."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.datasets.exporting import export_dataset
from apps.datasets.importing.readers import FORMATS, FileRefused, guess_format
from apps.datasets.models import Dataset
from apps.datasets.selectors import latest_version


class Command(BaseCommand):
    help = "Write a version of a dataset (default: the newest) to OUT."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Our --version is the dataset's version, not the program's.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("out")
        parser.add_argument("--dataset", type=int, required=True, help="Dataset id.")
        parser.add_argument("--version", type=int, help="Version number; default: the newest.")
        parser.add_argument("--format", choices=FORMATS, help="Default: from OUT's name.")
        parser.add_argument(
            "--embeddings", metavar="SPACE", help="Include the vectors of this embedding space."
        )

    def handle(
        self,
        *args,
        out: str,
        dataset: int,
        version: int | None,
        format: str | None,
        embeddings: str | None,
        **options,
    ):
        target = Dataset.objects.filter(pk=dataset).first()
        if target is None:
            raise CommandError(f"No dataset with id {dataset}.")
        newest = latest_version(target)
        if newest is None:
            raise CommandError(f"Dataset {dataset} has no version yet.")
        version = version or newest
        if not target.versions.filter(number=version).exists():
            raise CommandError(f"Dataset {dataset} has no version {version} (newest: {newest}).")
        space = None
        if embeddings:
            space = target.embedding_spaces.filter(name=embeddings).first()
            if space is None:
                raise CommandError(f"Dataset {dataset} has no embedding space {embeddings!r}.")
        try:
            fmt = format or guess_format(out)
        except FileRefused as exc:
            raise CommandError(str(exc)) from None
        with Path(out).open("wb") as f:
            count = export_dataset(
                dataset=target, version=version, fmt=fmt, out=f, space=space, by=None
            )
        self.stderr.write(f"Wrote {count:,} samples of {target.name!r} version {version} to {out}.")
