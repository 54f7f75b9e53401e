"""Dataset pages: overview with import, samples table, sample page, versions and diff."""

from __future__ import annotations

import json
import mimetypes
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.config.forms import add_service_error
from apps.datasets import query, selectors, services
from apps.datasets.access import get_dataset_for_user, get_import_of_dataset, get_sample_of_dataset
from apps.datasets.forms import CommitForm, DatasetForm, ImportForm, RelabelForm
from apps.datasets.importing.readers import FileRefused, guess_format
from apps.datasets.models import JobStatus, Sample
from apps.datasets.query import QueryError
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap

PAGE = 50


@login_required
@require_POST
def dataset_create(request, slug: str):
    membership = get_membership_for_user(request.user, slug=slug, need=Cap.EDIT_DATA)
    form = DatasetForm(request.POST)
    if form.is_valid():
        try:
            dataset = services.dataset_create(
                project=membership.project, by=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Dataset “{dataset.name}” created. Import its samples next.")
            return redirect("datasets:detail", dataset_id=dataset.pk)
    messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    return redirect("projects:detail", slug=slug)


def _caps(request, dataset) -> dict:
    membership = get_membership_for_user(request.user, pk=dataset.project_id)
    return {"can_edit": membership.can(Cap.EDIT_DATA), "can_curate": membership.can(Cap.CURATE)}


@login_required
@require_http_methods(["GET", "POST"])
def dataset_detail(request, dataset_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id)
    form = ImportForm()
    if request.method == "POST":
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                fmt = data["format"] or guess_format(data["file"].name)
                services.import_job_create(
                    dataset=dataset,
                    by=request.user,
                    file_name=data["file"].name,
                    fmt=fmt,
                    upload=data["file"],
                    on_duplicate=data["on_duplicate"],
                    extend_labels=data["extend_labels"],
                )
            except FileRefused as exc:
                form.add_error("format", str(exc))
            except ValidationError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, f"Import of {data['file'].name} queued.")
                form = ImportForm()
        if request.htmx:
            return render(
                request, "datasets/detail.html#imports", _detail_context(request, dataset, form)
            )
    return render(request, "datasets/detail.html", _detail_context(request, dataset, form))


def _detail_context(request, dataset, form) -> dict:
    counts = selectors.counts_by_split_and_label(dataset)
    splits = sorted({c["split"] for c in counts})
    labels = list(dataset.labels) + (["—"] if any(c["label"] is None for c in counts) else [])
    grid = {(c["split"], c["label"] or "—"): c["n"] for c in counts}
    table = [
        {
            "label": label,
            "cells": [grid.get((s, label), 0) for s in splits],
            "total": sum(grid.get((s, label), 0) for s in splits),
        }
        for label in labels
    ]
    split_totals = [sum(grid.get((s, label), 0) for label in labels) for s in splits]
    imports = list(selectors.imports_of_dataset(dataset)[:5])
    return {
        "dataset": dataset,
        "project": dataset.project,
        "splits": splits,
        "table": table,
        "split_totals": split_totals,
        "total": sum(split_totals),
        "imports": imports,
        "polling": any(j.status in (JobStatus.QUEUED, JobStatus.RUNNING) for j in imports),
        "versions": list(selectors.versions_of_dataset(dataset)[:5]),
        "draft_count": selectors.draft_of_dataset(dataset).count(),
        "spaces": list(dataset.embedding_spaces.all()),
        "runs": list(dataset.model_runs.all()[:5]),
        "form": form,
        **_scoring_context(dataset),
        **_caps(request, dataset),
    }


def _scoring_context(dataset) -> dict:
    from apps.quality.models import RunStatus

    run = dataset.scoring_runs.first()
    return {
        "scoring": run,
        "scoring_live": run is not None and run.status in (RunStatus.QUEUED, RunStatus.RUNNING),
    }


@login_required
@require_http_methods(["GET", "POST"])
def scoring(request, dataset_id: int):
    """The scoring panel: start a run (POST), or its live state while it runs (polled)."""
    from apps.quality.services import scoring_run_start

    dataset = get_dataset_for_user(request.user, dataset_id)
    if request.method == "POST":
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        try:
            scoring_run_start(dataset=dataset, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        if not request.htmx:
            return redirect("datasets:detail", dataset_id=dataset.pk)
    context = {"dataset": dataset, **_scoring_context(dataset), **_caps(request, dataset)}
    return render(request, "datasets/detail.html#scoring", context)


# Health tiles, in this order: each flag and the anchor of its method on the methods page.
HEALTH_TILES = {
    "mislabeled": "likely-mislabeled",
    "boundary": "class-overlap",
    "outlier": "outlier",
    "duplicate": "near-duplicates",
    "leaked": "near-duplicates",
    "conflicting": "near-duplicates",
    "redundant": "redundancy",
    "out_of_coverage": "drift",
    "pick": "active-learning",
}


# Splits in the order a data scientist reads them; any other split follows, by name.
HEALTH_SPLIT_ORDER = ["train", "validation", "test", "production", "unlabeled"]

# What a skipped part of a scoring run is called on the health page, and its method's anchor.
HEALTH_SKIPPED = {
    "embeddings": ("Embeddings", "embeddings"),
    "model_run": ("The model run's probabilities", "out-of-sample-probabilities"),
    "training_dynamics": ("Training dynamics", "error-potential"),
    "label_errors": ("Label errors and label noise", "likely-mislabeled"),
    "neighbours": ("Outliers, duplicates and clusters", "outlier"),
    "weak_slices": ("Weak metadata slices", "weak-slices"),
    "active_learning": ("Active-learning selection", "active-learning"),
    "drift": ("Production drift", "drift"),
}


@login_required
def health(request, dataset_id: int):
    """Dataset health: what the newest finished scoring run found, each count a link to its samples."""
    from apps.quality.models import Flag, RunStatus
    from apps.quality.selectors import latest_done_run

    def pct(share):
        """A share (0-1) as a percentage for the page; None stays None."""
        return None if share is None else round(100 * share, 1)

    def split_key(split):
        order = HEALTH_SPLIT_ORDER
        return (order.index(split), "") if split in order else (len(order), split)

    dataset = get_dataset_for_user(request.user, dataset_id)
    run = latest_done_run(dataset)
    summary = run.summary if run else {}
    counts = summary.get("flag_counts", {})
    tiles = [
        {"flag": flag, "label": Flag(flag).label, "anchor": anchor, "count": counts[flag]}
        for flag, anchor in HEALTH_TILES.items()
        if flag in counts
    ]
    classes = summary.get("classes", [])

    # Confusion matrix, given label (rows) x most probable class (columns). Agreement and
    # confusion are shaded on their own scales (0-10): a few confused samples would otherwise
    # vanish next to the hundreds on the diagonal.
    # Newer runs keep given x suggested label, whose cells are exact queries for the table.
    by_suggestion = "suggestion_matrix" in summary
    confusion = summary.get("suggestion_matrix") or summary.get("confusion")
    if confusion:
        size = range(len(confusion))
        most_right = max(confusion[i][i] for i in size) or 1
        most_wrong = max((confusion[i][j] for i in size for j in size if i != j), default=0) or 1
        confusion = [
            {
                "label": label,
                "total": sum(row),
                "agree": pct(row[i] / sum(row)) if sum(row) else None,
                "cells": [
                    {
                        "count": n,
                        "diagonal": i == j,
                        "shade": round(10 * n / (most_right if i == j else most_wrong)),
                        "url": _table_url(
                            dataset,
                            query.joined(
                                [
                                    {"field": "label", "op": "=", "value": label},
                                    {"field": "suggested_label", "op": "=", "value": classes[j]},
                                ]
                            ),
                            "-mislabel_score",
                        )
                        if by_suggestion and n
                        else None,
                    }
                    for j, n in enumerate(row)
                ],
            }
            for i, (label, row) in enumerate(zip(classes, confusion, strict=True))
        ]

    # Class balance, one row per class and one column per split. A split's counts are looked up
    # by class name: the stored mapping does not keep the order of `classes`.
    distribution = summary.get("label_distribution", {})
    splits = sorted(distribution, key=split_key)
    labelled = {s: sum(distribution[s].get("counts", {}).values()) for s in splits}
    balance = {
        "splits": splits,
        "rows": [
            {
                "label": c,
                "cells": [
                    {
                        "split": s,
                        "count": (n := distribution[s].get("counts", {}).get(c, 0)),
                        "share": pct(n / labelled[s]) if labelled[s] else None,
                    }
                    for s in splits
                ],
            }
            for c in classes
        ],
        "unlabelled": [{"split": s, "count": distribution[s].get("unlabelled", 0)} for s in splits],
        "imbalance": [distribution[s].get("imbalance") for s in splits],
    }

    noise = [
        {
            "split": split,
            "labelled": row["labelled"],
            "flagged": row["flagged"],
            "rate": pct(row["rate"]),
            "low": pct(row["low"]),
            "high": pct(row["high"]),
        }
        for split, row in sorted(
            summary.get("noise_by_split", {}).items(), key=lambda i: split_key(i[0])
        )
    ]

    cluster_terms = {c["cluster"]: c.get("top_terms", []) for c in summary.get("clusters", [])}
    clusters = [
        {
            **c,
            "error_pct": pct(c["error_rate"]),
            "rest_pct": pct(c.get("rest_error_rate")),
            "accuracy_pct": pct(c.get("accuracy")),
            "majority_pct": pct(c.get("majority_share")),
            "url": _table_url(
                dataset, {"field": "cluster", "op": "=", "value": c["cluster"]}, "-mislabel_score"
            ),
        }
        for c in summary.get("clusters", [])[:10]
    ]

    drift = summary.get("drift")
    if drift:
        drift = {
            **drift,
            "share_out_of_coverage_pct": pct(drift.get("share_out_of_coverage")),
            "shift": [
                {
                    "cluster": c["cluster"],
                    "terms": cluster_terms.get(c["cluster"], []),
                    "train": pct(c["train_share"]),
                    "production": pct(c["production_share"]),
                    # Percentage points, signed, with a true minus sign.
                    "change": f"{100 * c['change']:+.1f}".replace("-", "\u2212"),
                    "url": _table_url(
                        dataset,
                        query.joined(
                            [
                                {"field": "cluster", "op": "=", "value": c["cluster"]},
                                {"field": "split", "op": "=", "value": "production"},
                            ]
                        ),
                        "coverage",
                    ),
                }
                for c in drift.get("cluster_shift", [])[:6]
            ],
        }

    slices = [
        {
            **s,
            "error_pct": pct(s["error_rate"]),
            "rest_pct": pct(s["rest_error_rate"]),
            "url": (url := _slice_url(dataset, s["column"], s["value"])),
            "errors_url": _slice_url(dataset, s["column"], s["value"], flagged=True)
            if url
            else None,
        }
        for s in summary.get("weak_slices", [])[:10]
    ]

    skipped = [
        {
            "name": HEALTH_SKIPPED.get(key, (key.replace("_", " ").capitalize(), None))[0],
            "anchor": HEALTH_SKIPPED.get(key, (None, None))[1],
            "why": why,
        }
        for key, why in (run.skipped.items() if run and run.skipped else [])
    ]

    context = {
        "dataset": dataset,
        "project": dataset.project,
        "run": run,
        "summary": summary,
        "tiles": tiles,
        "confusion": confusion,
        "classes": classes,
        "balance": balance,
        "noise": noise,
        "clusters": clusters,
        "drift": drift,
        "class_pairs": [
            {"classes": p["classes"], "overlap": pct(p["overlap"])}
            for p in summary.get("class_pairs", [])[:5]
        ],
        "slices": slices,
        "skipped": skipped,
        "live": dataset.scoring_runs.filter(
            status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
        ).first(),
        **_caps(request, dataset),
    }
    return render(request, "datasets/health.html", context)


@login_required
def import_status(request, dataset_id: int, job_id: int):
    """The imports panel, polled while a job runs."""
    dataset = get_dataset_for_user(request.user, dataset_id)
    get_import_of_dataset(dataset, job_id)
    return render(
        request, "datasets/detail.html#imports", _detail_context(request, dataset, ImportForm())
    )


EXPLORER_KEYS = ("q", "ordering", "view", "run", "removed")


def _explorer(request, dataset):
    """The table's query, run and ordering from the URL; a bad one is shown, not raised."""
    try:
        return selectors.exploration(dataset, request.GET), None
    except QueryError as exc:
        params = {k: v for k, v in request.GET.items() if k in ("run", "removed")}
        try:
            return selectors.exploration(dataset, params), str(exc)
        except QueryError:
            return selectors.exploration(dataset, {}), str(exc)


def _table_url(dataset, query, ordering: str, **extra) -> str:
    params = {"q": json.dumps(query, ensure_ascii=False)} if query else {}
    if ordering and ordering != "id":
        params["ordering"] = ordering
    params.update({k: v for k, v in extra.items() if v})
    return reverse("datasets:samples", args=[dataset.pk]) + (
        "?" + urlencode(params) if params else ""
    )


@login_required
def sample_list(request, dataset_id: int):
    """The sample table: filter chips that build a query, sort by any score, keyset pages,
    select samples (or all that match) and act on them, save the view."""
    dataset = get_dataset_for_user(request.user, dataset_id)
    found, error = _explorer(request, dataset)
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
            _table_url(dataset, query.joined(parts), found.ordering, run=request.GET.get("run"))
        )
    page = None
    if not error:
        try:
            page = selectors.sample_page(
                dataset,
                query=found.query,
                run=found.run,
                ordering=found.ordering,
                cursor=request.GET.get("cursor"),
                size=PAGE,
                removed=found.removed,
            )
        except QueryError as exc:
            error = str(exc)
    rows = page.samples if page else []
    ids = [s.pk for s in rows]
    scores = selectors.scores_of_samples(found.run, ids)
    tags = selectors.tags_of_samples(ids)
    name = found.ordering.lstrip("-")
    parts = query.parts_of(found.query)
    state = {k: request.GET[k] for k in EXPLORER_KEYS if request.GET.get(k)}
    if found.view and "q" not in state:
        state = {"view": found.view.pk, **{k: v for k, v in state.items() if k != "view"}}
    chips = [
        {
            "text": query.describe(part),
            "remove": _table_url(
                dataset,
                query.joined(parts[:i] + parts[i + 1 :]),
                found.ordering,
                run=state.get("run"),
            ),
        }
        for i, part in enumerate(parts)
    ]
    membership = get_membership_for_user(request.user, pk=dataset.project_id)
    # A table of one cluster (the health page's links) carries the cluster's discussion.
    cluster = None
    if (
        isinstance(found.query, dict)
        and found.query.get("field") == "cluster"
        and found.query.get("op") == "="
        and found.run is not None
        and isinstance(found.query.get("value"), int)
    ):
        from apps.review import selectors as review_selectors

        cluster = {
            "number": found.query["value"],
            "comments": review_selectors.thread(run=found.run, cluster=found.query["value"]),
            "target": {"dataset": dataset.pk, "run": found.run.pk, "cluster": found.query["value"]},
        }
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "cluster": cluster,
        "can_comment": membership.can(Cap.COMMENT),
        "run": found.run,
        "view": found.view,
        "error": error,
        "chips": chips,
        "query_json": json.dumps(found.query, indent=1, ensure_ascii=False) if found.query else "",
        "query_compact": json.dumps(found.query, ensure_ascii=False) if found.query else "",
        "ordering": found.ordering,
        "orderings": _orderings(found.run),
        "fields": _filter_fields(found.run),
        "ops": query.OPS,
        "rows": [
            {"sample": s, "scores": scores.get(s.pk), "tags": tags.get(s.pk, [])} for s in rows
        ],
        "sort_score": name if name != "id" else None,
        "sort_label": name.replace("_", " ").capitalize(),
        "page": page,
        "state": urlencode(state),
        "next_url": _with(request, cursor=page.next) if page and page.next else None,
        "previous_url": _with(request, cursor=page.previous) if page and page.previous else None,
        "views": selectors.saved_views_of_dataset(dataset),
        "tags": [
            {
                "name": t.name,
                "samples": t.samples,
                "url": _table_url(
                    dataset, {"field": "tags", "op": "contains", "value": t.name}, "id"
                ),
            }
            for t in selectors.tags_of_dataset(dataset)
        ],
        "labels": dataset.labels,
        "default_participants": " ".join(
            m.user.username
            for m in dataset.project.memberships.select_related("user").filter(
                role__in=["reviewer", "scientist"]
            )
        ),
        "can_tag": membership.can(Cap.COMMENT),
        "can_manage_vendors": membership.can(Cap.MANAGE_VENDORS),
        "vendors": list(dataset.project.vendors.all()),
        "can_curate": membership.can(Cap.CURATE),
        "removed": found.removed,
    }
    return render(request, "datasets/samples.html", context)


def _with(request, **changes) -> str:
    params = request.GET.copy()
    for key, value in changes.items():
        params[key] = value
    return f"{request.path}?{params.urlencode()}"


def _orderings(run) -> list[tuple[str, str]]:
    choices = [("id", "Oldest first"), ("-id", "Newest first")]
    if run is not None:
        for name in query.ORDERINGS[1:]:
            words = name.replace("_", " ")
            choices += [
                (f"-{name}", f"{words.capitalize()}, highest first"),
                (name, f"{words.capitalize()}, lowest first"),
            ]
    return choices


def _filter_fields(run) -> list[tuple[str, str]]:
    return [
        (name, name.replace("_", " "))
        for name, field in query.FIELDS.items()
        if run is not None or not field.score
    ] + [("metadata.", "metadata key…")]


def _bulk_selection(request, dataset):
    """The samples a bulk form names: every match of its query, or the ticked ones in it."""
    params = {k: request.POST.get(k) for k in ("q", "view", "run") if request.POST.get(k)}
    found = selectors.exploration(dataset, params)
    samples = selectors.samples_matching(dataset, query=found.query, run=found.run)
    if request.POST.get("all") != "1":
        ids = [int(x) for x in request.POST.getlist("ids") if x.isdigit()]
        if not ids:
            raise ValidationError("Tick some samples first, or select all that match.")
        samples = samples.filter(pk__in=ids)
    return found, samples


@login_required
@require_POST
def samples_bulk(request, dataset_id: int):
    """A bulk action from the table; back to the table with what it did."""
    action = request.POST.get("action", "")
    if action not in services.BULK_ACTIONS:
        raise Http404("No such action.")
    dataset = get_dataset_for_user(
        request.user, dataset_id, need=Cap(services.BULK_ACTIONS[action])
    )
    back = request.POST.get("back") or reverse("datasets:samples", args=[dataset.pk])
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("datasets:samples", args=[dataset.pk])
    try:
        found, samples = _bulk_selection(request, dataset)
        label = request.POST.get("label", "")
        changed = services.samples_bulk(
            dataset=dataset,
            samples=samples,
            action=action,
            by=request.user,
            tag=request.POST.get("tag", ""),
            label=None if label == "none" else label,
            reason=request.POST.get("reason", ""),
            run=found.run,
        )
    except (QueryError, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect(back)
    done = {
        "tag": f"Tagged {changed:,} samples “{request.POST.get('tag', '').strip()}”.",
        "untag": f"Took the tag “{request.POST.get('tag', '').strip()}” off {changed:,} samples.",
        "relabel": f"{changed:,} relabels added to the draft.",
        "remove": f"{changed:,} removals added to the draft.",
    }[action]
    messages.success(request, done)
    return redirect(back)


@login_required
@require_POST
def saved_view_create(request, dataset_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.COMMENT)
    try:
        found = selectors.exploration(
            dataset,
            {k: request.POST.get(k) for k in ("q", "run", "ordering") if request.POST.get(k)},
        )
        view = services.saved_view_create(
            dataset=dataset,
            name=request.POST.get("name", ""),
            query=found.query,
            ordering=found.ordering if found.ordering != "id" else "",
            by=request.user,
            run=found.run,
        )
    except (QueryError, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect(request.POST.get("back") or reverse("datasets:samples", args=[dataset.pk]))
    messages.success(
        request, f"View “{view.name}” saved: its link shows it to everyone in the project."
    )
    return redirect(reverse("datasets:samples", args=[dataset.pk]) + f"?view={view.pk}")


@login_required
@require_http_methods(["GET", "POST"])
def sample_detail(request, dataset_id: int, sample_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id)
    sample = get_sample_of_dataset(dataset, sample_id)
    draft = selectors.draft_of_dataset(dataset).filter(sample=sample).first()
    found, _error = _explorer(request, dataset)
    score = selectors.scores_of_samples(found.run, [sample.pk]).get(sample.pk)
    suggested = (score or {}).get("suggested_label")
    # The form offers what the engine suggests, unless the draft already says something.
    initial = draft.label if draft else (suggested or sample.label)
    form = RelabelForm(dataset.labels, initial={"label": initial})
    back = {k: request.GET[k] for k in EXPLORER_KEYS if request.GET.get(k)}
    here = reverse("datasets:sample", args=[dataset.pk, sample.pk]) + (
        "?" + urlencode(back) if back else ""
    )
    if request.method == "POST":
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.CURATE)
        action = request.POST.get("action")
        form = RelabelForm(dataset.labels, request.POST)
        try:
            if action == "remove":
                services.sample_remove(
                    sample=sample, by=request.user, reason=request.POST.get("reason", "")
                )
                messages.success(request, "Removal added to the draft.")
            elif form.is_valid():
                services.sample_relabel(sample=sample, by=request.user, **form.cleaned_data)
                messages.success(
                    request, f"Relabel to “{form.cleaned_data['label']}” added to the draft."
                )
            else:
                raise ValidationError(form.errors.as_text())
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect(here)
    previous_id, next_id = selectors.steps_in_query(
        dataset,
        sample,
        query=found.query,
        run=found.run,
        ordering=found.ordering,
        removed=found.removed,
    )
    try:
        neighbours = selectors.similar_samples(dataset, sample.pk, limit=10)
    except LookupError:
        neighbours = []
    from apps.review import selectors as review_selectors

    history = list(selectors.label_history(sample))
    decisions = review_selectors.decisions_for_events([e.pk for e in history])
    for event in history:
        event.review_decision = decisions.get(event.pk)
    membership = get_membership_for_user(request.user, pk=dataset.project_id)
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "sample": sample,
        "form": form,
        "history": history,
        "comments": review_selectors.thread(sample=sample),
        "comment_target": {"dataset": dataset.pk, "sample": sample.pk},
        "can_comment": membership.can(Cap.COMMENT),
        "draft": draft,
        "run": found.run,
        "score": score,
        "score_rows": _score_rows(score),
        "suggested": suggested,
        "tags": selectors.tags_of_samples([sample.pk]).get(sample.pk, []),
        "neighbours": neighbours,
        "state": urlencode(back),
        "previous": previous_id,
        "next": next_id,
        "table_url": reverse("datasets:samples", args=[dataset.pk])
        + ("?" + urlencode(back) if back else ""),
        "similar_url": _table_url(dataset, {"similar_to": sample.pk, "min_similarity": 0.9}, "id"),
        **_caps(request, dataset),
    }
    return render(request, "datasets/sample.html", context)


def _slice_url(dataset, column: str, value, *, flagged: bool = False) -> str | None:
    """The table of a metadata slice: a value, or a quantile bin such as "[0.5, 3)"."""
    import re

    field = f"{query.METADATA}{column}"
    if value == "(missing)":
        return None
    found = re.fullmatch(r"\[(\S+), (\S+)([\])])", str(value))
    if found:
        try:
            low, high = float(found[1]), float(found[2])
        except ValueError:
            return None
        parts = [
            {"field": field, "op": ">=", "value": low},
            {"field": field, "op": "<=" if found[3] == "]" else "<", "value": high},
        ]
    else:
        parts = [{"field": field, "op": "=", "value": value}]
    if flagged:
        parts.append({"field": "likely_mislabeled", "op": "=", "value": True})
    return _table_url(dataset, query.joined(parts), "-mislabel_score")


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
    return render(request, "datasets/query_language.html", context)


SCORE_WORDS = [
    ("mislabel_score", "Mislabel score", "likely-mislabeled"),
    ("error_potential", "Error potential", "error-potential"),
    ("margin", "Margin", "class-overlap"),
    ("knn_agreement", "Neighbours agreeing", "likely-mislabeled"),
    ("outlier_score", "Outlier score", "outliers"),
    ("coverage", "Coverage (production)", "drift"),
    ("cluster", "Cluster", "clusters"),
    ("duplicate_group", "Duplicate group", "duplicates"),
]


def _score_rows(score: dict | None) -> list[dict]:
    if not score:
        return []
    return [
        {"name": name, "label": words, "value": score.get(name), "anchor": anchor}
        for name, words, anchor in SCORE_WORDS
        if score.get(name) is not None
    ]


@login_required
@require_http_methods(["GET", "POST"])
def versions(request, dataset_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id)
    form = CommitForm()
    if request.method == "POST":
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.CURATE)
        if request.POST.get("action") == "discard":
            services.draft_discard(dataset=dataset)
            messages.success(request, "Draft discarded.")
            return redirect("datasets:versions", dataset_id=dataset.pk)
        form = CommitForm(request.POST)
        if form.is_valid():
            try:
                version = services.version_commit(
                    dataset=dataset, by=request.user, message=form.cleaned_data["message"]
                )
            except ValidationError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, f"Version {version.number} committed.")
                return redirect("datasets:versions", dataset_id=dataset.pk)
    all_versions = list(selectors.versions_of_dataset(dataset))
    numbers = [v.number for v in all_versions]
    diff = None
    a, b = request.GET.get("from", ""), request.GET.get("to", "")
    if a.isdigit() and b.isdigit() and int(a) in numbers and int(b) in numbers:
        diff = selectors.version_diff(dataset, int(a), int(b), limit=500)
    elif len(numbers) >= 2:
        diff = selectors.version_diff(dataset, numbers[1], numbers[0], limit=500)
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "versions": all_versions,
        "diff": diff,
        "draft": selectors.draft_of_dataset(dataset).order_by("id")[:200],
        "form": form,
        **_caps(request, dataset),
    }
    return render(request, "datasets/versions.html", context)


@login_required
def media(request, dataset_id: int, path: str):
    """An image of the dataset, after the project's access check: only a path some sample of
    this dataset points at is served, and only to those who may see the dataset."""
    from django.http import FileResponse, Http404

    from apps.datasets.importing.values import image_path
    from apps.datasets.models import Dataset
    from apps.datasets.selectors import media_open
    from apps.vendors.access import vendor_may_see_image

    try:
        path = image_path(path)
    except ValueError:
        raise Http404("No such image.") from None
    # A vendor annotator sees the images of their assigned items, and only those.
    if vendor_may_see_image(request.user, dataset_id, path):
        dataset = Dataset.objects.get(pk=dataset_id)
    else:
        dataset = get_dataset_for_user(request.user, dataset_id)
    if not Sample.objects.filter(dataset=dataset, image=path).exists():
        raise Http404("No such image.")
    stream = media_open(dataset, path)
    if stream is None:
        raise Http404("No such image.")
    response = FileResponse(
        stream, content_type=mimetypes.guess_type(path)[0] or "application/octet-stream"
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response
