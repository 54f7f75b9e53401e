"""The task types: what an annotation is for each, and the rules every area asks about it (one
module per concern under each task's package). Callers ask `of(dataset).<concern>`; nothing
outside this package branches on the task."""

from __future__ import annotations

from typing import Any

from apps.annotations import classification, multilabel
from apps.annotations.base import Task, TaskType, Unsupported

__all__ = ["REGISTRY", "Task", "TaskType", "Unsupported", "creatable", "get", "of"]

REGISTRY: dict[str, TaskType] = {kind.task: kind for kind in (classification.TYPE, multilabel.TYPE)}


def get(task: str) -> TaskType:
    """The task type named `task`; Unsupported for a task Loupe does not know (yet)."""
    try:
        return REGISTRY[task]
    except KeyError:
        if task in Task.values:
            raise Unsupported(f"{Task(task).label} is not supported yet.") from None
        raise Unsupported(f"Unknown task {task!r}; Loupe knows {', '.join(REGISTRY)}.") from None


def of(dataset: Any) -> TaskType:
    """The task type of a dataset (anything with a `task`)."""
    return get(dataset.task)


def creatable() -> list[Task]:
    """The tasks a new dataset may have: those every area of the product serves."""
    return [kind.task for kind in REGISTRY.values() if kind.creatable]
