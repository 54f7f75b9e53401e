"""Single-label classification: each labelled sample has one class of the dataset's schema."""

from apps.annotations.base import AREAS, Task, TaskType, missing
from apps.annotations.classification import agreement, review, values

TYPE = TaskType(
    task=Task.CLASSIFICATION,
    values=values,
    edits=missing(Task.CLASSIFICATION, "edits"),
    review=review,
    agreement=agreement,
    supports=frozenset(AREAS),
)
