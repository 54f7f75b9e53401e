"""The explorer's own actions on a selection: tag, untag, and relabel or remove in the draft."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import ngettext

from apps.datasets.models import Dataset
from apps.explorer import services
from apps.explorer.actions import Action, Selection
from apps.explorer.actions.checks import text
from apps.projects.capabilities import Cap


class Tag(Action):
    name = "tag"
    cap = Cap.COMMENT
    unattended_cap = Cap.EDIT_DATA
    takes = ("tag",)
    label = "Tag the samples"
    bulk = True
    bulk_template = "explorer/bulk_action_tag.html"
    rule = True
    form_template = "explorer/rule_action_tag.html"

    def clean(self, dataset: Dataset, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {"tag": services.tag_name(text(settings.get("tag"), "tag", limit=1000))}

    def perform(
        self,
        selection: Selection,
        settings: Mapping[str, Any],
        *,
        by: Any,
        detail: dict[str, Any],
        state: dict[str, Any] | None = None,
    ) -> int:
        detail["tagged"] = services.samples_tag(
            dataset=selection.dataset, samples=selection.matching, tag=settings["tag"], by=by
        )
        return detail["tagged"]

    def done(self, count: int | None, settings: Mapping[str, Any]) -> str:
        n = count or 0
        return ngettext("Tagged %(n)s sample “%(tag)s”.", "Tagged %(n)s samples “%(tag)s”.", n) % {
            "n": f"{n:,}",
            "tag": settings["tag"],
        }


class Untag(Action):
    name = "untag"
    cap = Cap.COMMENT
    takes = ("tag",)
    bulk = True
    bulk_template = "explorer/bulk_action_untag.html"  # after tag's, whose tag name it takes

    def clean(self, dataset: Dataset, settings: Mapping[str, Any]) -> dict[str, Any]:
        tag = str(settings.get("tag") or "")
        services.tag_name(tag)
        # As given: "no such tag" quotes what was asked for.
        return {"tag": tag}

    def perform(
        self,
        selection: Selection,
        settings: Mapping[str, Any],
        *,
        by: Any,
        detail: dict[str, Any],
        state: dict[str, Any] | None = None,
    ) -> int:
        return services.samples_untag(
            dataset=selection.dataset, samples=selection.matching, tag=settings["tag"]
        )

    def done(self, count: int | None, settings: Mapping[str, Any]) -> str:
        n = count or 0
        return ngettext(
            "Took the tag “%(tag)s” off %(n)s sample.",
            "Took the tag “%(tag)s” off %(n)s samples.",
            n,
        ) % {"n": f"{n:,}", "tag": settings["tag"].strip()}


class Relabel(Action):
    """A relabel of every selected sample in the draft; label "suggested" takes each one's
    suggested label in the selection's scoring run."""

    name = "relabel"
    cap = Cap.CURATE
    takes = ("label", "reason")
    bulk = True
    bulk_template = "explorer/bulk_action_relabel.html"

    def clean(self, dataset: Dataset, settings: Mapping[str, Any]) -> dict[str, Any]:
        label = settings.get("label", "")
        if label == "":
            raise ValidationError({"label": 'Give a label, null (unlabelled) or "suggested".'})
        return {"label": label, "reason": settings.get("reason") or ""}

    def perform(
        self,
        selection: Selection,
        settings: Mapping[str, Any],
        *,
        by: Any,
        detail: dict[str, Any],
        state: dict[str, Any] | None = None,
    ) -> int:
        return services.samples_relabel(
            dataset=selection.dataset,
            samples=selection.matching,
            label=settings["label"],
            by=by,
            reason=settings.get("reason", ""),
            run=selection.run,
        )

    def done(self, count: int | None, settings: Mapping[str, Any]) -> str:
        n = count or 0
        return ngettext(
            "%(n)s relabel added to the draft.", "%(n)s relabels added to the draft.", n
        ) % {"n": f"{n:,}"}


class Remove(Action):
    name = "remove"
    cap = Cap.CURATE
    takes = ("reason",)
    bulk = True
    bulk_template = "explorer/bulk_action_remove.html"

    def clean(self, dataset: Dataset, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {"reason": settings.get("reason") or ""}

    def perform(
        self,
        selection: Selection,
        settings: Mapping[str, Any],
        *,
        by: Any,
        detail: dict[str, Any],
        state: dict[str, Any] | None = None,
    ) -> int:
        return services.samples_remove(
            dataset=selection.dataset,
            samples=selection.matching,
            by=by,
            reason=settings.get("reason", ""),
        )

    def done(self, count: int | None, settings: Mapping[str, Any]) -> str:
        n = count or 0
        return ngettext(
            "%(n)s removal added to the draft.", "%(n)s removals added to the draft.", n
        ) % {"n": f"{n:,}"}
