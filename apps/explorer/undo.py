"""Undo for the sample table's last bulk action: tag, untag, and relabel or remove in the draft.

Before such an action runs, `snapshot` notes what it will change (the selected samples, which of
them had the tag, their earlier draft changes); after it, `record` adds what the action made, and
the view keeps the result in the user's session. `undo` puts everything back as it was, as long
as nothing it made has since been committed into a version. A selection of more than UNDO_LIMIT
samples is not kept: such an action cannot be undone.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.datasets.models import Dataset, LabelEvent, SampleTag, Tag
from apps.explorer.actions import Selection
from apps.explorer.services import tag_name

UNDOABLE = ("tag", "untag", "relabel", "remove")
UNDO_LIMIT = 10_000
_EVENT_FIELDS = ("sample_id", "label", "removed", "source", "by_id", "reason")


def snapshot(action: str, selection: Selection, settings: dict) -> dict[str, Any] | None:
    """What the action is about to change, or None when it cannot be undone."""
    if action not in UNDOABLE:
        return None
    ids = list(selection.matching.order_by().values_list("pk", flat=True)[: UNDO_LIMIT + 1])
    if len(ids) > UNDO_LIMIT:
        return None
    state: dict[str, Any] = {"action": action, "dataset": selection.dataset.pk, "ids": ids}
    if action in ("tag", "untag"):
        tag = Tag.objects.filter(dataset=selection.dataset, name=tag_name(settings["tag"])).first()
        state["new_tag"] = tag is None  # made by the action: undone, it goes too
        state["had"] = (
            list(
                SampleTag.objects.filter(tag=tag, sample_id__in=ids).values_list(
                    "sample_id", flat=True
                )
            )
            if tag
            else []
        )
    else:
        state["prior"] = list(
            LabelEvent.objects.filter(
                dataset=selection.dataset, version=None, sample_id__in=ids
            ).values(*_EVENT_FIELDS)
        )
    return state


def record(state: dict[str, Any], settings: dict, message: str) -> dict[str, Any]:
    """The snapshot completed once the action ran: what it made, and what it said it did."""
    ids = state["ids"]
    if state["action"] in ("tag", "untag"):
        tag = Tag.objects.filter(
            dataset_id=state["dataset"], name=tag_name(settings["tag"])
        ).first()
        state["tag"] = tag.pk if tag else None
    else:
        state["made"] = list(
            LabelEvent.objects.filter(
                dataset_id=state["dataset"], version=None, sample_id__in=ids
            ).values_list("pk", flat=True)
        )
    state["message"] = message
    return state


@transaction.atomic
def undo(dataset: Dataset, state: dict[str, Any], *, by) -> str:
    """Put back what the recorded action changed; what was undone, in words. ValidationError
    when it can no longer be undone."""
    if state.get("dataset") != dataset.pk or state.get("action") not in UNDOABLE:
        raise ValidationError("There is no bulk action of this dataset to undo.")
    ids, action = state["ids"], state["action"]
    if action == "tag":
        SampleTag.objects.filter(tag_id=state["tag"], sample_id__in=ids).exclude(
            sample_id__in=state["had"]
        ).delete()
        if state["new_tag"] and not SampleTag.objects.filter(tag_id=state["tag"]).exists():
            Tag.objects.filter(pk=state["tag"]).delete()
    elif action == "untag":
        if state["tag"] is not None:
            SampleTag.objects.bulk_create(
                [SampleTag(tag_id=state["tag"], sample_id=i, by=by) for i in state["had"]],
                ignore_conflicts=True,
            )
    else:
        made = LabelEvent.objects.filter(pk__in=state["made"])
        if made.filter(version=None).count() != len(state["made"]):
            raise ValidationError(
                "The draft has been committed or changed since, so this can no longer be undone."
            )
        made.delete()
        LabelEvent.objects.bulk_create(
            [LabelEvent(dataset=dataset, version=None, **event) for event in state["prior"]]
        )
    return f"Undone: {state['message']}"
