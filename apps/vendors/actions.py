"""Vendors' actions on a selection: draft a relabel batch of it, or of the most informative
samples in it (the active-learning pick)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from apps.datasets.models import Dataset, Embedding, ModelRun, Prediction, Sample, Split
from apps.datasets.selectors import embedding_space
from apps.explorer.actions import Action, Selection
from apps.explorer.actions.checks import MAX_ID, money, positive_int, text
from apps.projects.capabilities import Cap
from apps.projects.models import Membership
from apps.vendors.models import Batch, Vendor
from apps.vendors.services import BATCH_MAX_ITEMS, batch_create, batch_items_add
from workers.engine.neighbours import active_learning_pick

PICK_POOL = 20_000  # unlabelled matches the active-learning pick chooses among, at most
UNUSABLE = "no unlabelled or production matches with probabilities and embeddings"


class VendorBatch(Action):
    """Add the samples to the draft batch made the first time (kept in the state), or draft
    one for the vendor; with a budget, no more items than it pays for."""

    name = "vendor_batch"
    cap = Cap.MANAGE_VENDORS
    takes: tuple[str, ...] = ("vendor", "budget", "price_per_item", "title", "instructions")
    label = "Draft a relabel batch"
    rule = True
    form_template = "vendors/rule_action_vendor_batch.html"
    needs_budget = True

    def clean(self, dataset: Dataset, settings: Mapping[str, Any]) -> dict[str, Any]:
        vendor_id = positive_int(settings.get("vendor"), "vendor", high=MAX_ID)
        vendor = Vendor.objects.filter(pk=vendor_id, projects=dataset.project).first()
        if vendor is None:
            raise ValidationError({"vendor": "No such vendor working for this project."})
        clean: dict[str, Any] = {"vendor": vendor.pk}
        if self.needs_budget or settings.get("budget") not in (None, ""):
            clean["budget"] = money(settings.get("budget"), "budget")
        if settings.get("price_per_item") not in (None, ""):
            clean["price_per_item"] = money(settings["price_per_item"], "price_per_item")
        elif not vendor.price_per_item and "budget" in clean:
            raise ValidationError(
                {"price_per_item": f"{vendor.name} has no price per item: give one for the budget."}
            )
        for key, limit in (("title", 200), ("instructions", 10_000)):
            if value := text(settings.get(key), key, limit=limit):
                clean[key] = value
        return clean

    def form_context(self, dataset: Dataset, membership: Membership) -> dict[str, Any]:
        return {"vendors": dataset.project.vendors.all()}

    @staticmethod
    def _target(state: Mapping[str, Any] | None) -> Batch | None:
        batch_id = (state or {}).get("batch")
        if not batch_id:
            return None
        return Batch.objects.filter(pk=batch_id, status=Batch.Status.DRAFT).first()

    @staticmethod
    def _vendor(dataset: Dataset, settings: Mapping[str, Any]) -> Vendor:
        vendor = Vendor.objects.filter(pk=settings["vendor"], projects=dataset.project_id).first()
        if vendor is None:
            raise ValidationError({"vendor": "The rule's vendor no longer works for this project."})
        return vendor

    def _narrow(self, room: int, settings: Mapping[str, Any]) -> int:
        """The room before the budget has its say."""
        return room

    def room(
        self,
        dataset: Dataset,
        settings: Mapping[str, Any],
        *,
        room: int,
        state: Mapping[str, Any],
        detail: dict[str, Any],
    ) -> int:
        batch = self._target(state)
        held = batch.items.count() if batch else 0
        room = min(room, BATCH_MAX_ITEMS - held)
        detail["batch"] = batch.pk if batch else None
        room = self._narrow(room, settings)
        if "budget" in settings:
            vendor = self._vendor(dataset, settings)
            price = Decimal(settings.get("price_per_item") or vendor.price_per_item)
            budget = Decimal(settings["budget"])
            affordable = math.floor(budget / price) if price > 0 else BATCH_MAX_ITEMS
            detail["budget"] = {
                "cap": str(budget),
                "price_per_item": str(price),
                "currency": vendor.currency,
                "items_already": held,
            }
            if affordable - held < room:
                detail["budget"]["capped"] = True
            room = min(room, affordable - held)
        return room

    def perform(
        self,
        selection: Selection,
        settings: Mapping[str, Any],
        *,
        by: Any,
        detail: dict[str, Any],
        state: dict[str, Any] | None = None,
    ) -> int | None:
        batch = self._target(state)
        if batch is not None:
            samples = selection.samples
            added = batch_items_add(
                batch=batch,
                samples=samples if samples is not None else selection.first(BATCH_MAX_ITEMS),
                by=by,
            )
            detail["batch"] = batch.pk
            return added
        batch = batch_create(
            dataset=selection.dataset,
            vendor=self._vendor(selection.dataset, settings),
            by=by,
            title=settings.get("title") or "",
            instructions=settings.get("instructions", ""),
            query=selection.query,
            ordering=selection.ordering,
            run=selection.run,
            ids=selection.ids,
            samples=selection.samples,
            price_per_item=settings.get("price_per_item"),
        )
        if state is not None:
            state["batch"] = batch.pk
        detail["batch"] = batch.pk
        return None


class ActivePick(VendorBatch):
    """A batch of the most informative unlabelled or production samples of the selection:
    uncertain, and spread over the embedding space."""

    name = "active_pick"
    takes = (*VendorBatch.takes, "count", "uncertainty")
    label = "Pick the most informative samples into a batch"
    form_template = "vendors/rule_action_active_pick.html"
    needs_budget = False

    def clean(self, dataset: Dataset, settings: Mapping[str, Any]) -> dict[str, Any]:
        clean = super().clean(dataset, settings)
        clean["count"] = positive_int(settings.get("count"), "count", high=5_000)
        clean["uncertainty"] = settings.get("uncertainty") or "margin"
        if clean["uncertainty"] not in ("margin", "entropy"):
            raise ValidationError({"uncertainty": "Use margin or entropy."})
        return clean

    def _narrow(self, room: int, settings: Mapping[str, Any]) -> int:
        return min(room, settings["count"])

    def choose(
        self,
        dataset: Dataset,
        candidates: QuerySet[Sample],
        settings: Mapping[str, Any],
        *,
        run: Any,
        room: int,
        detail: dict[str, Any],
    ) -> list[Sample]:
        pool = candidates.filter(
            Q(split__in=[Split.UNLABELED, Split.PRODUCTION]) | Q(label__isnull=True)
        ).values_list("pk", flat=True)[:PICK_POOL]
        ids = list(pool)
        model_run = (run.model_run if run is not None and run.model_run_id else None) or (
            ModelRun.objects.filter(dataset=dataset).first()
        )
        space = embedding_space(dataset)
        detail["pool"] = len(ids)
        if not ids or model_run is None or space is None:
            detail["skipped"] = UNUSABLE
            return []
        probs = dict(
            Prediction.objects.filter(run=model_run, epoch=0, sample_id__in=ids).values_list(
                "sample_id", "probs"
            )
        )
        vectors = dict(
            Embedding.objects.filter(space=space, sample_id__in=ids).values_list(
                "sample_id", "vector"
            )
        )
        usable = [i for i in ids if i in probs and i in vectors]
        detail["pool_usable"] = len(usable)
        if not usable:
            detail["skipped"] = UNUSABLE
            return []
        order = active_learning_pick(
            np.asarray([probs[i] for i in usable], dtype=np.float32),
            np.asarray([vectors[i] for i in usable], dtype=np.float32),
            budget=min(room, len(usable)),
            uncertainty=settings["uncertainty"],
        )
        chosen = [usable[i] for i in order.tolist()]
        by_id = Sample.objects.in_bulk(chosen)
        return [by_id[i] for i in chosen]
