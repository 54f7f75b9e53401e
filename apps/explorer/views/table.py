"""The sample table: a query built from filter chips, sorted by any score, a page at a time;
bulk actions on a selection, saved views, and the page on the query language."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from apps.core.links import sample_table_url
from apps.core.panels import panels_context
from apps.datasets import selectors as dataset_selectors
from apps.datasets.access import get_dataset_for_user
from apps.explorer import actions, query, selectors, services, undo
from apps.explorer.columns import DEFAULT_COLUMNS, columns_of, is_score
from apps.explorer.query import QueryError
from apps.explorer.views import stale_context
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap

PAGE = 50


EXPLORER_KEYS = ("q", "ordering", "view", "run", "removed", "columns")
# The sample table's column headings, where the field's name will not do.
TITLES = {
    "external_id": "Id",
    "suggested_label": "Suggested",
    "likely_mislabeled": "Likely mislabelled",
    "mislabel_score": "Mislabel",
    "observed_at": "Seen",
}
NUMBER_KINDS = ("number", "integer")
METADATA_KEYS = 60  # metadata keys the column menu offers (any other can be typed)


def exploration_of_request(request, dataset):
    """The table's query, run and ordering from the URL; a bad one is shown, not raised."""
    try:
        return selectors.exploration(dataset, request.GET), None
    except QueryError as exc:
        if exc.path == "columns":  # the table still shows, in its default columns
            params = {k: v for k, v in request.GET.items() if k != "columns"}
            try:
                found = selectors.exploration(
                    dataset, {**params, "columns": ",".join(DEFAULT_COLUMNS)}
                )
            except QueryError:
                pass
            else:
                messages.error(request, str(exc))
                return found, None
        params = {k: v for k, v in request.GET.items() if k in ("run", "removed")}
        try:
            return selectors.exploration(dataset, params), str(exc)
        except QueryError:
            return selectors.exploration(dataset, {}), str(exc)


@login_required
def sample_list(request, dataset_id: int):
    """The sample table: filter chips that build a query, sort by any score, keyset pages,
    select samples (or all that match) and act on them, save the view."""
    dataset = get_dataset_for_user(request.user, dataset_id)
    found, error = exploration_of_request(request, dataset)
    legacy = any(k in request.GET for k in ("split", "label", "search", "flag", "meta")) or any(
        k.startswith("meta.") for k in request.GET
    )
    if "add_field" in request.GET or "like" in request.GET or (legacy and not error):
        # A new chip, or an old-style link: the canonical URL carries the whole query.
        parts = query.parts_of(found.query)
        if "add_field" in request.GET:
            try:
                condition = query.condition_from_form(
                    request.GET.get("add_field", ""),
                    request.GET.get("add_op", ""),
                    request.GET.get("add_value", ""),
                )
                query.compile_query(dataset, found.run, condition)
            except QueryError as exc:
                messages.error(request, f"That filter was not added: {exc}")
            else:
                parts.append(condition)
        if (request.GET.get("like") or "").strip():
            try:
                minimum = float(request.GET.get("like_min") or query.TEXT_SIMILARITY)
            except ValueError:
                minimum = query.TEXT_SIMILARITY
            condition = {"similar_text": request.GET["like"].strip(), "min_similarity": minimum}
            try:
                query.compile_query(dataset, found.run, condition)
            except QueryError as exc:
                messages.error(request, f"That search was not added: {exc}")
            else:
                parts.append(condition)
        return redirect(
            sample_table_url(
                dataset.pk,
                query.joined(parts),
                _ordering_for(parts, request.GET.get("ordering") or found.ordering),
                run=request.GET.get("run"),
                columns=request.GET.get("columns"),
            )
        )
    if "col" in request.GET or "col_key" in request.GET:
        # The column menu: the ticked columns, and a metadata key typed in, as `columns`.
        chosen = request.GET.getlist("col")
        if key := request.GET.get("col_key", "").strip():
            chosen.append(query.METADATA + key.removeprefix(query.METADATA))
        params = {k: request.GET[k] for k in EXPLORER_KEYS if request.GET.get(k)}
        params.pop("columns", None)
        try:
            params["columns"] = ",".join(columns_of(chosen) if chosen else [])
        except QueryError as exc:
            messages.error(request, f"Those columns were not shown: {exc}")
            params["columns"] = request.GET.get("columns", "")
        target = reverse("datasets:samples", args=[dataset.pk])
        params = {k: v for k, v in params.items() if v}
        return redirect(f"{target}?{urlencode(params)}" if params else target)
    page = None
    if not error:
        try:
            page = selectors.exploration_page(
                dataset, found, cursor=request.GET.get("cursor"), size=PAGE
            )
        except QueryError as exc:
            error = str(exc)
        else:
            if not request.GET.get("cursor"):
                services.sort_index_wanted(dataset, found.ordering)
    rows = page.samples if page else []
    ids = [s.pk for s in rows]
    scores = selectors.scores_of_samples(found.run, ids)
    tags = dataset_selectors.tags_of_samples(ids)
    drafts = dataset_selectors.draft_of_samples(dataset, ids)
    parts = query.parts_of(found.query)
    state = {k: request.GET[k] for k in EXPLORER_KEYS if request.GET.get(k)}
    if found.view and "q" not in state:
        state = {"view": found.view.pk, **{k: v for k, v in state.items() if k != "view"}}
    similarity = query.has_similarity(found.query)
    shown = _shown_columns(found, similarity=similarity)
    # The columns as chosen (by the URL or the saved view), for the forms that keep them.
    chosen = request.GET.get("columns") or (
        ",".join(found.view.columns) if found.view and found.view.columns else ""
    )
    chips = [
        {
            "text": query.describe(part),
            "remove": sample_table_url(
                dataset.pk,
                query.joined(parts[:i] + parts[i + 1 :]),
                _ordering_for(parts[:i] + parts[i + 1 :], found.ordering),
                run=state.get("run"),
                columns=state.get("columns"),
            ),
        }
        for i, part in enumerate(parts)
    ]
    membership = get_membership_for_user(request.user, pk=dataset.project_id)
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "exploration": found,
        "membership": membership,
        "can_comment": membership.can(Cap.COMMENT),
        "run": found.run,
        "view": found.view,
        "error": error,
        "chips": chips,
        "query_json": json.dumps(found.query, indent=1, ensure_ascii=False) if found.query else "",
        "query_compact": json.dumps(found.query, ensure_ascii=False) if found.query else "",
        "ordering": found.ordering,
        "orderings": _orderings(found.run, similarity=similarity, ordering=found.ordering),
        "similarity": similarity,
        "fields": _filter_fields(found.run),
        "ops": query.OPS,
        "columns": [_heading(request, name, found) for name in shown],
        "column_choices": _column_choices(dataset, found, similarity=similarity),
        "columns_param": chosen,
        "rows": [
            {
                "sample": s,
                "scores": scores.get(s.pk),
                "draft": drafts.get(s.pk),
                "cells": [
                    _cell(name, s, scores.get(s.pk), tags.get(s.pk, []), found) for name in shown
                ],
            }
            for s in rows
        ],
        "page": page,
        "state": urlencode(state),
        # The same query, view, run and ordering as a gallery (image datasets).
        "gallery_state": urlencode({k: v for k, v in state.items() if k != "columns"}),
        "column_state": [(k, v) for k, v in state.items() if k != "columns"],
        "default_columns_url": _default_columns_url(request, state, found),
        "ordering_base": f"{request.path}?"
        + "".join(f"{urlencode({k: v})}&" for k, v in state.items() if k != "ordering")
        + "ordering=",
        # What the table shows, for its Export links: its state and its columns.
        "export_state": urlencode(
            {**state, **({"columns": request.GET["columns"]} if request.GET.get("columns") else {})}
        ),
        "next_url": _with(request, cursor=page.next) if page and page.next else None,
        "previous_url": _with(request, cursor=page.previous) if page and page.previous else None,
        "views": selectors.saved_views_of_dataset(dataset),
        "tags": [
            {
                "name": t.name,
                "samples": t.samples,
                "url": sample_table_url(
                    dataset.pk, {"field": "tags", "op": "contains", "value": t.name}, "id"
                ),
            }
            for t in dataset_selectors.tags_of_dataset(dataset)
        ],
        "labels": dataset.labels,
        "can_tag": membership.can(Cap.COMMENT),
        "can_curate": membership.can(Cap.CURATE),
        # The bulk bar's controls: those of the actions offered that the member may take.
        "bulk_actions": [
            a.bulk_template for a in actions.offered() if a.bulk_template and membership.can(a.cap)
        ],
        "removed": found.removed,
        "undo": _undo_of(request, dataset),
        **stale_context(request, dataset, found.run),
    }
    context.update(panels_context("samples", request, context))
    return render(request, "explorer/samples.html", context)


def _shown_columns(found, *, similarity: bool) -> list[str]:
    """The table's columns: those chosen that have values here (a score needs a run, similarity
    a similarity search), the similarity of a search, and the column it is sorted by."""
    shown = [
        c
        for c in found.columns
        if (found.run is not None or not is_score(c)) and (c != query.SIMILARITY or similarity)
    ]
    if similarity and query.SIMILARITY not in shown:
        shown.insert(1 if shown else 0, query.SIMILARITY)
    by = found.ordering.lstrip("-")
    if by != "id" and by not in shown:
        shown.append(by)
    return shown


def _title(name: str) -> str:
    if name.startswith(query.METADATA):
        return name[len(query.METADATA) :]
    return TITLES.get(name) or name.replace("_", " ").capitalize()


def _sortable(name: str, run) -> bool:
    if name.startswith(query.METADATA) or name == query.SIMILARITY:
        return True
    return name in query.ORDERINGS and (run is not None or name not in query.SCORE_ORDERINGS)


def _kind(name: str) -> str:
    if name.startswith(query.METADATA):
        return "metadata"
    if name == query.SIMILARITY:
        return "number"
    return query.FIELDS[name].kind


def _heading(request, name: str, found) -> dict:
    """A column heading: its title, and for a sortable column the link that sorts by it (first
    click: highest score first, other values A to Z; the next click reverses it)."""
    heading = {
        "name": name,
        "title": _title(name),
        "right": _kind(name) in NUMBER_KINDS,
        "sort": None,
        "url": None,
    }
    if not _sortable(name, found.run):
        return heading
    if found.ordering.lstrip("-") == name:
        heading["sort"] = "descending" if found.ordering.startswith("-") else "ascending"
        ordering = name if heading["sort"] == "descending" else f"-{name}"
    else:
        ordering = f"-{name}" if name in query.SCORE_ORDERINGS or name == query.SIMILARITY else name
    params = request.GET.copy()
    params.pop("cursor", None)
    if found.view and "view" not in params and "q" not in params:
        params["view"] = found.view.pk
    params["ordering"] = ordering
    heading["url"] = f"{request.path}?{params.urlencode()}"
    return heading


def _cell(name: str, sample, scores: dict | None, tags: list, found) -> dict:
    """What a row shows in a column: its kind (how the template draws it) and value."""
    if name.startswith(query.METADATA):
        value = (sample.metadata or {}).get(name[len(query.METADATA) :])
        shown = value if value is None or isinstance(value, str) else json.dumps(value)
        return {"kind": "metadata", "value": shown}
    if name == query.SIMILARITY:
        value = getattr(sample, query.SIMILARITY, None)
        return {"kind": "number", "value": value, "css": "similarity"}
    if name == "tags":
        return {"kind": "tags", "value": tags}
    if name == "text":
        return {"kind": "content", "value": None}
    field = query.FIELDS[name]
    if field.score:
        if scores is None and name == "suggested_label":
            return {"kind": "unscored", "value": None}
        if scores is None:
            return {"kind": field.kind, "value": None}
        value = scores.get(name)
        if name == "suggested_label":
            return {"kind": "suggested", "value": value, "same": value == sample.label}
    else:
        value = getattr(sample, name)
    return {"kind": "id" if name == "external_id" else field.kind, "value": value}


def _column_choices(dataset, found, *, similarity: bool) -> list[dict]:
    """What the column menu offers, ticked or not: the columns shown first, in their order, then
    the fields of the query language and the metadata keys of the dataset's samples."""
    names = [n for n in query.FIELDS if found.run is not None or not query.FIELDS[n].score]
    if similarity:
        names.append(query.SIMILARITY)
    names += [query.METADATA + k for k in selectors.metadata_keys(dataset, limit=METADATA_KEYS)]
    ordered = [*found.columns, *(n for n in names if n not in found.columns)]
    return [{"name": n, "title": _title(n), "on": n in found.columns} for n in ordered]


def _default_columns_url(request, state: dict, found) -> str:
    """The table as it is, with the default columns (named, when a saved view has its own)."""
    params = {k: v for k, v in state.items() if k != "columns"}
    if found.view and found.view.columns:
        params["columns"] = ",".join(DEFAULT_COLUMNS)
    return f"{request.path}?{urlencode(params)}"


def _undo_of(request, dataset) -> str | None:
    """What the user's last bulk action on this dataset did, when it can be undone."""
    state = request.session.get("undo") or {}
    return state.get("message") if state.get("dataset") == dataset.pk else None


def _with(request, **changes) -> str:
    params = request.GET.copy()
    for key, value in changes.items():
        params[key] = value
    return f"{request.path}?{params.urlencode()}"


def _ordering_for(parts: list, ordering: str) -> str:
    """The table's ordering once its query is `parts`: nearest first when a similarity search
    is added to a table in its default order, and back to that order when the last one goes."""
    similar = query.has_similarity(query.joined(parts))
    if ordering.lstrip("-") == query.SIMILARITY and not similar:
        return "id"
    return "-" + query.SIMILARITY if similar and ordering == "id" else ordering


def _orderings(run, *, similarity: bool = False, ordering: str = "id") -> list[tuple[str, str]]:
    choices = [("id", "Oldest first"), ("-id", "Newest first")]
    if similarity:
        choices = [("-" + query.SIMILARITY, "Most similar first"), *choices]
    if run is not None:
        for name in query.SCORE_ORDERINGS:
            words = name.replace("_", " ")
            choices += [
                (f"-{name}", f"{words.capitalize()}, highest first"),
                (name, f"{words.capitalize()}, lowest first"),
            ]
    for name in query.VALUE_ORDERINGS:
        choices += [(name, f"{_title(name)}, A to Z"), (f"-{name}", f"{_title(name)}, Z to A")]
    if ordering.lstrip("-").startswith(query.METADATA):  # a heading sorted it
        title = _title(ordering.lstrip("-"))
        direction = "Z to A" if ordering.startswith("-") else "A to Z"
        choices.append((ordering, f"{title}, {direction}"))
    return choices


def _filter_fields(run) -> list[tuple[str, str]]:
    return [
        (name, name.replace("_", " "))
        for name, field in query.FIELDS.items()
        if run is not None or not field.score
    ] + [("metadata.", "metadata key…")]


@login_required
@require_POST
def samples_bulk(request, dataset_id: int):
    """A bulk action from the table; back to the table with what it did."""
    action = actions.find(request.POST.get("action", ""))
    if action is None or not action.bulk:
        raise Http404("No such action.")
    dataset = get_dataset_for_user(request.user, dataset_id, need=action.cap)
    back = request.POST.get("back") or reverse("datasets:samples", args=[dataset.pk])
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("datasets:samples", args=[dataset.pk])
    try:
        selection = actions.selection_of_form(dataset, request.POST, ticked=True)
        selection.matching  # noqa: B018 - a bad query is the error to report first
        label = request.POST.get("label", "")
        settings = action.clean(
            dataset,
            {
                "tag": request.POST.get("tag", ""),
                "label": None if label == "none" else label,
                "reason": request.POST.get("reason", ""),
            },
        )
        before = undo.snapshot(action.name, selection, settings)
        changed = action.perform(selection, settings, by=request.user, detail={})
    except (QueryError, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect(back)
    said = action.done(changed, settings)
    # The last bulk action of this user, which the table offers to undo (one at a time).
    request.session["undo"] = undo.record(before, settings, said) if before else None
    if before is None and action.name in undo.UNDOABLE:
        said += f" More than {undo.UNDO_LIMIT:,} samples: this cannot be undone."
    messages.success(request, said)
    return redirect(back)


@login_required
@require_POST
def samples_undo(request, dataset_id: int):
    """Undo the user's last bulk action on the dataset's table."""
    state = request.session.get("undo") or {}
    action = actions.find(state.get("action", ""))
    dataset = get_dataset_for_user(
        request.user, dataset_id, need=action.cap if action else Cap.COMMENT
    )
    back = request.POST.get("back") or reverse("datasets:samples", args=[dataset.pk])
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("datasets:samples", args=[dataset.pk])
    try:
        said = undo.undo(dataset, state, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        request.session["undo"] = None
        messages.success(request, said)
    return redirect(back)


@login_required
@require_POST
def saved_view_create(request, dataset_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.COMMENT)
    try:
        found = selectors.exploration(
            dataset,
            {
                k: request.POST.get(k)
                for k in ("q", "run", "ordering", "columns")
                if request.POST.get(k)
            },
        )
        view = services.saved_view_create(
            dataset=dataset,
            name=request.POST.get("name", ""),
            query=found.query,
            ordering=found.ordering if found.ordering != "id" else "",
            columns=found.columns if request.POST.get("columns") else [],
            by=request.user,
            run=found.run,
        )
    except (QueryError, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect(request.POST.get("back") or reverse("datasets:samples", args=[dataset.pk]))
    messages.success(
        request, f"View “{view.name}” saved: its link shows it to everyone in the project."
    )
    return redirect(sample_table_url(dataset.pk, view=view.pk))


@login_required
@require_safe
def query_language(request):
    """The sample query language: its fields (from the allow-list), operators and examples."""
    fields = [
        {"name": name, "kind": f.kind, "ops": f.ops, "score": f.score, "help": f.help}
        for name, f in query.FIELDS.items()
    ]
    examples = [
        (
            "Likely mislabelled training samples",
            {
                "all": [
                    {"field": "split", "op": "=", "value": "train"},
                    {"field": "likely_mislabeled", "op": "=", "value": True},
                ]
            },
        ),
        (
            "Cats the engine would call dogs",
            {
                "all": [
                    {"field": "label", "op": "=", "value": "cat"},
                    {"field": "suggested_label", "op": "=", "value": "dog"},
                ]
            },
        ),
        (
            "Hard phone calls from the new region",
            {
                "all": [
                    {"field": "metadata.channel", "op": "=", "value": "phone"},
                    {"field": "metadata.region", "op": "in", "value": ["apac", "latam"]},
                    {"field": "error_potential", "op": ">", "value": 0.7},
                ]
            },
        ),
        (
            "Outliers not yet looked at",
            {
                "all": [
                    {"field": "flags", "op": "contains", "value": "outlier"},
                    {"not": {"field": "tags", "op": "contains", "value": "checked"}},
                ]
            },
        ),
        ("Near copies of sample 42", {"similar_to": 42, "min_similarity": 0.95}),
        ("A lasso on the map", {"within": [[0.1, 0.2], [0.9, 0.2], [0.5, 0.8]]}),
    ]
    context = {
        "fields": fields,
        "metadata_ops": query.METADATA_OPS,
        "orderings": query.ORDERINGS,
        "limits": {
            "depth": query.MAX_DEPTH,
            "conditions": query.MAX_CONDITIONS,
            "in_values": query.MAX_IN_VALUES,
            "similar": query.SIMILAR_LIMIT,
            "polygon": query.MAX_POLYGON,
        },
        "examples": [(title, json.dumps(q, indent=1)) for title, q in examples],
    }
    return render(request, "explorer/query_language.html", context)
