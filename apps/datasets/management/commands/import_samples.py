"""Import a CSV, JSONL or Parquet file into a dataset and wait until it has finished."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts.models import User
from apps.datasets import services
from apps.datasets.importing.mapping import ROLES
from apps.datasets.importing.readers import (
    FORMATS,
    FileRefused,
    guess_format,
    guess_modality,
    peek_columns,
)
from apps.datasets.models import Dataset, JobStatus
from apps.projects.models import Project
from apps.projects.services import project_create


class Command(BaseCommand):
    help = "Import samples from PATH into a dataset (all or nothing); a new version on success."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--dataset", required=True, help="Dataset name.")
        parser.add_argument(
            "--create", action="store_true", help="Create the project and dataset when missing."
        )
        parser.add_argument("--user", help="Who imports (and owns what --create makes).")
        parser.add_argument(
            "--format",
            choices=[*FORMATS, "archive"],
            help="Default: from the file name (.zip/.tar: an archive).",
        )
        parser.add_argument(
            "--modality",
            choices=["text", "image", "tabular"],
            help="For --create; default: from the columns.",
        )
        parser.add_argument("--on-duplicate", choices=["reject", "upsert"], default="reject")
        parser.add_argument(
            "--extend-labels", action="store_true", help="Add labels not yet in the schema."
        )
        parser.add_argument(
            "--column",
            action="append",
            default=[],
            metavar="NAME=ROLE",
            help=f"What a column is, when its name does not say: {', '.join(ROLES)}. Repeatable.",
        )
        parser.add_argument(
            "--generate-ids",
            action="store_true",
            help="The file has no id column: make each id from the sample's content.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object as the last line."
        )

    def handle(
        self,
        *args,
        path: str,
        project: str,
        dataset: str,
        create: bool,
        user: str | None,
        format: str | None,
        modality: str | None,
        on_duplicate: str,
        extend_labels: bool,
        json: bool,
        column: list[str],
        generate_ids: bool,
        **options,
    ):
        self.as_json = json
        columns = {}
        for given in column:
            name, sep, role = given.rpartition("=")
            if not sep or not name:
                raise CommandError(f"Give --column as NAME=ROLE, not {given!r}.")
            columns[name] = role
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            fmt = format or guess_format(file.name)
            by = self._user(user)
            target = self._dataset(
                project,
                dataset,
                create=create,
                by=by,
                path=str(file),
                fmt=fmt,
                modality=modality,
                columns=columns,
            )
            job = services.import_job_create(
                dataset=target,
                by=by,
                file_name=file.name,
                fmt=fmt,
                path=str(file.resolve()),
                on_duplicate=on_duplicate,
                extend_labels=extend_labels,
                enqueue=False,
                columns=columns or None,
                generate_ids=generate_ids,
            )
        except (ValidationError, FileRefused) as exc:
            self._fail(" ".join(getattr(exc, "messages", [str(exc)])))
        job = services.import_job_run(job_id=job.pk)
        if job.status != JobStatus.DONE:
            self._fail(
                job.error, problems=job.problems, count=job.problem_count, dataset_id=target.pk
            )
        result = job.result
        self.stderr.write(
            f"Imported {result['imported']:,} new and {result['updated']:,} updated samples into "
            f"{target.name!r} (dataset {target.pk}) as version {result['version']} in {result['seconds']:.1f} s."
        )
        if self.as_json:
            self.stdout.write(_json({"ok": True, **result}))

    def _user(self, username: str | None) -> User | None:
        if username is None:
            return None
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        return user

    @transaction.atomic
    def _dataset(
        self,
        slug: str,
        name: str,
        *,
        create: bool,
        by,
        path: str,
        fmt: str,
        modality: str | None,
        columns: dict[str, str],
    ) -> Dataset:
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            if not create:
                raise CommandError(f"No project with the slug {slug!r} (use --create to make it).")
            if by is None:
                raise CommandError("--create needs --user: the new project's owner.")
            project = project_create(name=slug, slug=slug, by=by)
        dataset = Dataset.objects.filter(project=project, name=name).first()
        if dataset is None:
            if not create:
                raise CommandError(
                    f"Project {slug!r} has no dataset named {name!r} (use --create to make it)."
                )
            if fmt == "archive":
                modality = modality or "image"
            # A mapped column counts as the role it is mapped to.
            names = [columns.get(c, c) for c in peek_columns(path, fmt)]
            modality = modality or guess_modality(names)
            dataset = services.dataset_create(project=project, name=name, modality=modality, by=by)
        return dataset

    def _fail(self, message: str, *, problems=(), count: int = 0, dataset_id=None):
        for problem in problems:
            where = f"row {problem['row']}" if problem.get("row") else "file"
            self.stderr.write(f"  {where}, column {problem['column']!r}: {problem['message']}")
        if count > len(problems):
            self.stderr.write(f"  … and {count - len(problems):,} more problems")
        if self.as_json:
            self.stdout.write(
                _json(
                    {
                        "ok": False,
                        "error": message,
                        "dataset_id": dataset_id,
                        "problems": list(problems),
                        "problem_count": count,
                    }
                )
            )
        raise CommandError(message)


def _json(obj) -> str:
    return json.dumps(obj, default=str)
