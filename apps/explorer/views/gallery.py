"""The gallery of an image dataset: the sample table's query, view, run and ordering as a grid of
thumbnails that lays out every match and draws only the rows in sight; the same selection and
bulk actions as the table; near-duplicate groups side by side. Its data come from two JSON
endpoints (the order of every match, the cells of some) and the thumbnails' own."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_safe

from apps.core.links import sample_table_url
from apps.core.panels import panels_context
from apps.datasets import selectors as dataset_selectors
from apps.datasets.access import get_dataset_for_user, get_sample_of_dataset
from apps.datasets.models import Modality
from apps.datasets.thumbnails import thumbnail_of
from apps.explorer import actions, query, selectors
from apps.explorer.query import QueryError
from apps.explorer.views import stale_context
from apps.explorer.views.table import EXPLORER_KEYS, _orderings, _undo_of, exploration_of_request
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap

MODES = ("grid", "groups")
CELLS_MAX = 500  # cells one request may ask for
FIRST_SCREEN = 72  # cells sent with the page: more than a 1440 x 900 screen shows
THUMB_CACHE = "private, max-age=86400"


def _image_dataset(request, dataset_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id)
    if dataset.modality != Modality.IMAGE:
        raise Http404("The gallery shows the samples of image datasets.")
    return dataset


def _state(request, found) -> dict:
    """The table's parameters of this request, as the table keeps them in its links."""
    state = {k: request.GET[k] for k in EXPLORER_KEYS if request.GET.get(k) and k != "columns"}
    if found.view and "q" not in state:
        state = {"view": found.view.pk, **{k: v for k, v in state.items() if k != "view"}}
    return state


def _bad(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=400)


@login_required
@require_safe
def gallery(request, dataset_id: int):
    """The page: its query in words, sort order, mode, bulk bar and the empty grid that
    static/js/gallery.js fills."""
    dataset = _image_dataset(request, dataset_id)
    found, error = exploration_of_request(request, dataset)
    mode = request.GET.get("mode") or "grid"
    if mode not in MODES:
        error, mode = error or f"mode: use one of {', '.join(MODES)}", "grid"
    if mode == "groups" and found.run is None:
        error, mode = error or "Duplicate groups need a finished scoring run.", "grid"
    state = _state(request, found) if not error else {}
    # The first screen's cells come with the page (a LIMIT that stops early in the ordering's
    # index), so its thumbnails load while the order of every match is still on its way.
    first: dict = {"ids": [], "cells": []}
    if not error and mode == "grid":
        try:
            ids = selectors.gallery_order(dataset, found, limit=FIRST_SCREEN).ids
        except QueryError as exc:
            error = str(exc)
        else:
            first = {"ids": ids, "cells": _cells(dataset, found.run, ids)}
    membership = get_membership_for_user(request.user, pk=dataset.project_id)
    page_params = urlencode({**state, **({"mode": mode} if mode != "grid" else {})})
    here = reverse("datasets:gallery", args=[dataset.pk])
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "exploration": found,
        "membership": membership,
        "run": found.run,
        "view": found.view,
        "error": error,
        "mode": mode,
        "chips": [query.describe(part) for part in query.parts_of(found.query)],
        "query_compact": json.dumps(found.query, ensure_ascii=False) if found.query else "",
        "ordering": found.ordering,
        "orderings": _orderings(
            found.run, similarity=query.has_similarity(found.query), ordering=found.ordering
        ),
        "ordering_base": f"{here}?"
        + "".join(f"{urlencode({k: v})}&" for k, v in state.items() if k != "ordering")
        + (f"mode={mode}&" if mode != "grid" else "")
        + "ordering=",
        "state": urlencode(state),
        "page_params": page_params,
        "table_url": sample_table_url(dataset.pk) + (f"?{urlencode(state)}" if state else ""),
        "grid_url": f"{here}?{urlencode(state)}" if state else here,
        "groups_url": f"{here}?{urlencode({**state, 'mode': 'groups'})}",
        "views": selectors.saved_views_of_dataset(dataset),
        "tags": [{"name": t.name} for t in dataset_selectors.tags_of_dataset(dataset)],
        "labels": dataset.labels,
        "can_tag": membership.can(Cap.COMMENT),
        "can_curate": membership.can(Cap.CURATE),
        "bulk_actions": [
            a.bulk_template for a in actions.offered() if a.bulk_template and membership.can(a.cap)
        ],
        "removed": found.removed,
        "first_screen": first,
        "undo": _undo_of(request, dataset),
        **stale_context(request, dataset, found.run),
    }
    # The table's panels (a review session or a vendor batch from the selection) serve here too.
    context.update(panels_context("samples", request, context))
    return render(request, "explorer/gallery.html", context)


@login_required
@require_safe
def gallery_order(request, dataset_id: int):
    """Every match's id in order (`ids`; in duplicate groups mode `groups` too), and the cells of
    the first `cells` of them, so the first screen needs one request."""
    dataset = _image_dataset(request, dataset_id)
    mode = request.GET.get("mode") or "grid"
    if mode not in MODES:
        return _bad(f"mode: use one of {', '.join(MODES)}")
    first = request.GET.get("cells", "0")
    if not first.isdigit() or int(first) > CELLS_MAX:
        return _bad(f"cells: a whole number up to {CELLS_MAX}")
    try:
        found = selectors.exploration(dataset, request.GET)
        order = (
            selectors.gallery_groups(dataset, found)
            if mode == "groups"
            else selectors.gallery_order(dataset, found)
        )
    except QueryError as exc:
        return _bad(str(exc))
    data: dict = {
        "count": len(order.ids),
        "truncated": order.truncated,
        "limit": selectors.GALLERY_LIMIT,
        "ids": order.ids,
        "cells": _cells(dataset, found.run, order.ids[: int(first)]),
    }
    if order.groups is not None:
        data["groups"] = [len(group) for group in order.groups]
    return JsonResponse(data)


@login_required
@require_safe
def gallery_cells(request, dataset_id: int):
    """What the grid shows of some samples (`ids`, comma-separated, up to CELLS_MAX): label,
    split, scores, flags, reasons, draft; the run's (`run`, default the newest) scores."""
    dataset = _image_dataset(request, dataset_id)
    raw = [part for part in request.GET.get("ids", "").split(",") if part]
    if not raw or len(raw) > CELLS_MAX or not all(part.isdigit() for part in raw):
        return _bad(f"ids: 1 to {CELLS_MAX} sample ids, comma-separated")
    try:
        found = selectors.exploration(
            dataset, {"run": request.GET["run"]} if request.GET.get("run") else {}
        )
    except QueryError as exc:
        return _bad(str(exc))
    return JsonResponse({"cells": _cells(dataset, found.run, [int(part) for part in raw])})


def _cells(dataset, run, ids) -> list[dict]:
    if not ids:
        return []
    cells = []
    for row in selectors.gallery_cells(dataset, run, ids):
        score = row["scores"] or {}
        flags = score.get("flags") or []
        draft = row["draft"]
        cells.append(
            {
                "id": row["pk"],
                "ext": row["external_id"],
                "label": row["label"],
                "split": row["split"],
                "image": reverse("datasets:media", args=[dataset.pk, row["image"]])
                if row["image"]
                else None,
                "scored": row["scores"] is not None,
                "mislabel": score.get("mislabel_score"),
                "likely": bool(score.get("likely_mislabeled")),
                "suggested": score.get("suggested_label"),
                "outlier": "outlier" in flags,
                "outlier_score": score.get("outlier_score"),
                "group": score.get("duplicate_group"),
                "flags": flags,
                "reasons": score.get("reasons") or [],
                "draft": None
                if draft is None
                else {"removed": draft["removed"], "label": draft["label"]},
            }
        )
    return cells


@login_required
@require_safe
def thumbnail(request, dataset_id: int, sample_id: int):
    """A sample's image, resized (longest side 256 px) and cached; the same access check as the
    full image. Named by the sample, never by a path: the stored path is the only one read."""
    dataset = get_dataset_for_user(request.user, dataset_id)
    sample = get_sample_of_dataset(dataset, sample_id)
    if not sample.image:
        raise Http404("The sample has no image.")
    thumb = thumbnail_of(dataset, sample.image)
    if thumb is None:
        raise Http404("No such image.")
    unchanged = get_conditional_response(request, etag=thumb.etag)
    response: HttpResponseBase = (
        unchanged
        if unchanged is not None
        else FileResponse(thumb.open(), content_type="image/jpeg")
    )
    response["ETag"] = thumb.etag
    response["Cache-Control"] = THUMB_CACHE
    return response
