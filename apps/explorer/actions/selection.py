"""A selection of a dataset's samples, and the one way a request or a form names it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from apps.datasets.models import Dataset, Sample
from apps.explorer.selectors import exploration, samples_chosen, samples_matching

QUERY_KEYS = ("q", "view", "run", "ordering")


@dataclass
class Selection:
    """Samples of a dataset to act on: the matches of a query under a scoring run in an ordering,
    narrowed to `ids` when given; or, when `samples` is given, those samples in their order (a
    rule's matches), the query then saying only where they came from."""

    dataset: Dataset
    query: Any
    run: Any = None
    ordering: str = ""  # "" is by id
    ids: frozenset[int] | None = None
    samples: list[Sample] | None = None
    view: Any = None  # the saved view the query came from

    @cached_property
    def matching(self) -> QuerySet[Sample]:
        """Every selected sample, unordered, for work done in one statement. QueryError when
        the query is bad (read once, and kept)."""
        if self.samples is not None:
            return Sample.objects.filter(pk__in=[s.pk for s in self.samples])
        found = samples_matching(self.dataset, query=self.query, run=self.run)
        return found if self.ids is None else found.filter(pk__in=self.ids)

    def first(self, limit: int) -> list[Sample]:
        """The first `limit` selected samples in the selection's order (what a review session
        or a batch is made of). A bad query is a ValidationError on "query"."""
        return samples_chosen(
            self.dataset,
            query=self.query,
            run=self.run,
            ordering=self.ordering,
            ids=self.ids,
            samples=self.samples,
            limit=limit,
        )


def selection_from(dataset: Dataset, params: Mapping[str, Any]) -> Selection:
    """The selection a request names: `q` (a query, or its JSON text), `view` (a saved view,
    whose query and ordering `q` and `ordering` override), `run` (default: the newest finished
    one), `ordering`, and `ids` among the matches (None: every match). QueryError when bad."""
    found = exploration(dataset, {k: params[k] for k in QUERY_KEYS if params.get(k)})
    ids: Iterable[int] | None = params.get("ids")
    return Selection(
        dataset=dataset,
        query=found.query,
        run=found.run,
        ordering="" if found.ordering == "id" else found.ordering,
        ids=None if ids is None else frozenset(ids),
        view=found.view,
    )


def selection_of_form(dataset: Dataset, form: Any, *, ticked: bool = False) -> Selection:
    """The selection the sample table's form posts: its query, and the ticked `ids` among the
    matches unless `all` is "1". None ticked is every match; with `ticked`, a ValidationError."""
    params: dict[str, Any] = {k: form.get(k) for k in QUERY_KEYS}
    if form.get("all") != "1":
        # Ticked boxes post one id each; the gallery posts its selection as one list, "1,2,3".
        ids = {int(x) for value in form.getlist("ids") for x in value.split(",") if x.isdigit()}
        params["ids"] = ids or None
        selection = selection_from(dataset, params)
        if ticked and not ids:
            selection.matching  # noqa: B018 - a bad query is the error to report first
            raise ValidationError("Tick some samples first, or select all that match.")
        return selection
    return selection_from(dataset, params)
