"""What every part of the client stands on: its HTTP, and finding projects and datasets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from loupe_client.errors import LoupeError
from loupe_client.http import Http
from loupe_client.types import Dataset, Project

ProjectRef = int | str | Mapping[str, Any]
"""A project by id, by slug, or the project itself (a dict with its id)."""
Ref = int | Mapping[str, Any]
"""A dataset, run, rule... by id or itself (a dict with its id)."""


def ref_id(obj: Ref) -> int:
    return int(obj["id"]) if isinstance(obj, Mapping) else int(obj)


class ClientBase:
    """The connection the parts of `Loupe` share (one server, one user)."""

    http: Http

    def projects(self) -> list[Project]:
        """The projects you are a member of (id, slug, name, role, ...)."""
        return list(self.http.pages("projects/"))

    def project_id(self, project: ProjectRef) -> int:
        """A project's id from its id, its slug or the project itself."""
        if isinstance(project, Mapping):
            return int(project["id"])
        if isinstance(project, int) and not isinstance(project, bool):
            return project
        text = str(project)
        projects = self.projects()
        for p in projects:
            if p["slug"] == text:
                return int(p["id"])
        if text.isdigit():
            return int(text)
        slugs = ", ".join(p["slug"] for p in projects) or "none"
        raise LoupeError(f"No project {text!r} among yours ({slugs}).", status=404)

    def datasets(self, project: ProjectRef) -> list[Dataset]:
        """The datasets of a project (by id or slug)."""
        return list(self.http.pages(f"projects/{self.project_id(project)}/datasets/"))

    def dataset(self, dataset: Ref) -> Dataset:
        """One dataset, with `counts` of samples by split and label."""
        return cast(Dataset, self.http.json("GET", f"datasets/{ref_id(dataset)}/"))

    def find_dataset(self, project: ProjectRef, name: str) -> Dataset | None:
        """The project's dataset called `name`, or None."""
        wanted = name.strip()
        return next(
            (
                d
                for d in self.http.pages(f"projects/{self.project_id(project)}/datasets/")
                if d["name"] == wanted
            ),
            None,
        )

    def dataset_id(self, project: ProjectRef, dataset: int | str | Mapping[str, Any]) -> int:
        """A dataset's id from its id, the dataset itself, or its name in `project`."""
        if isinstance(dataset, Mapping):
            return int(dataset["id"])
        if isinstance(dataset, int) and not isinstance(dataset, bool):
            return dataset
        found = self.find_dataset(project, str(dataset))
        if found is not None:
            return int(found["id"])
        if str(dataset).isdigit():
            return int(dataset)
        raise LoupeError(f"No dataset {str(dataset)!r} in project {project!r}.", status=404)

    def _create_dataset(
        self, project_id: int, name: str, modality: str, labels: Sequence[str] | None
    ) -> Dataset:
        body = {"name": name, "modality": modality, "labels": list(labels or []), "description": ""}
        try:
            return cast(
                Dataset,
                self.http.json(
                    "POST", f"projects/{project_id}/datasets/", ok=(201,), json_body=body
                ),
            )
        except LoupeError as exc:
            # Made meanwhile by another client, or by our own attempt whose answer was lost.
            if exc.status == 400 and isinstance(exc.detail, dict) and "name" in exc.detail:
                found = self.find_dataset(project_id, name)
                if found is not None:
                    return found
            raise
