"""What every task type shares: the task names, the vote vocabulary, the limits on class names
and keys, the problems a value raises, and the shape of a task type (one object per concern)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TypedDict

from django.db import models

# Dataset.labels holds varchar(200).
MAX_LABEL_LENGTH = 200
# The key stored in the `label` columns of a task whose annotation is more than one class: the
# B-tree indexes on those columns hold ~2,700 bytes a key, 4 bytes a character at most.
MAX_KEY_LENGTH = 500

# Every area of the product a task type must serve before a dataset may be created with it.
AREAS = ("import", "scoring", "explorer", "review", "vendors", "reports", "monitoring")


class Task(models.TextChoices):
    CLASSIFICATION = "classification", "Single-label classification"
    MULTILABEL = "multilabel", "Multi-label classification"
    DETECTION = "detection", "Object detection"
    NER = "ner", "Named entities"


class VoteChoice(models.TextChoices):
    """What a reviewer says about a sample, whatever its task."""

    KEEP = "keep", "Keep"
    RELABEL = "relabel", "Relabel"
    REMOVE = "remove", "Remove"
    UNSURE = "unsure", "Unsure"


class Unsupported(Exception):
    """The dataset's task type does not do this yet: a clear refusal, never a crash."""


class Problem(ValueError):
    """Why a value cannot be an annotation of the dataset, naming the class at fault if one is."""

    def __init__(self, message: str, *, cls: str | None = None):
        super().__init__(message)
        self.message = message
        self.cls = cls


# One change to an annotation, stored as JSON: {"op": "add", "class": "refund"}.
Edit = TypedDict("Edit", {"op": str, "class": str})


class VoteView(Protocol):
    """A vote as the review rules read it (a review Vote row is one)."""

    @property
    def choice(self) -> str: ...

    @property
    def label(self) -> str | None: ...


class Policy(Protocol):
    """A consensus policy as the review rules read it (a project's ConsensusPolicy is one)."""

    @property
    def min_votes(self) -> int: ...

    @property
    def agreement(self) -> float: ...


class Values(Protocol):
    """Which annotations a dataset's schema allows, and which class names a schema may hold."""

    def check(self, value: Any, *, schema: Sequence[str]) -> Problem | None: ...

    def check_class_name(self, name: str) -> str | None: ...


class Edits(Protocol):
    """Changes between two annotations of a sample."""

    def diff(self, old: Any, new: Any) -> list[Edit]: ...

    def apply(self, value: Any, edits: Iterable[Edit]) -> Any: ...

    def describe(self, edits: Iterable[Edit]) -> list[str]: ...


class Review(Protocol):
    """How reviewers' votes on a sample are counted and turned into a decision."""

    def tally(self, votes: Iterable[VoteView]) -> dict[str, int]: ...

    def consensus(
        self, counts: dict[str, int], policy: Policy
    ) -> tuple[str, str | None] | None: ...


class Agreement(Protocol):
    """How several annotators' answers for one item become its answer."""

    def final(self, answers: Iterable[Any]) -> Any: ...


class _Missing:
    """A concern the task type does not have yet: any use of it raises Unsupported."""

    def __init__(self, task: Task, concern: str):
        self._what = f"{task.label} does not support {concern} yet."

    def __getattr__(self, name: str) -> NoReturn:
        raise Unsupported(self._what)


def missing(task: Task, concern: str) -> Any:
    return _Missing(task, concern)


@dataclass(frozen=True)
class TaskType:
    """One task type: its concerns, and the areas of the product that serve it (a dataset may be
    created with it only once every area does)."""

    task: Task
    values: Values
    edits: Edits
    review: Review
    agreement: Agreement
    supports: frozenset[str]

    @property
    def label(self) -> str:
        return self.task.label

    @property
    def creatable(self) -> bool:
        return self.supports >= set(AREAS)
