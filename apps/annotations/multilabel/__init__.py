"""Multi-label classification: each labelled sample has a set of classes of the dataset's
schema. Its values and edits are in place; no area of the product serves it yet, so no
dataset can be created with it."""

from apps.annotations.base import Task, TaskType, missing
from apps.annotations.multilabel import edits, values

TYPE = TaskType(
    task=Task.MULTILABEL,
    values=values,
    edits=edits,
    review=missing(Task.MULTILABEL, "review"),
    agreement=missing(Task.MULTILABEL, "agreement"),
    supports=frozenset(),
)
