"""Dataset pages: overview with import, samples table, sample page, versions and diff."""

from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.config.forms import add_service_error
from apps.datasets import selectors, services
from apps.datasets.access import get_dataset_for_user, get_import_of_dataset, get_sample_of_dataset
from apps.datasets.forms import CommitForm, DatasetForm, ImportForm, RelabelForm, SampleFilterForm
from apps.datasets.importing.readers import FileRefused, guess_format
from apps.datasets.models import JobStatus, Sample
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
    confusion = summary.get("confusion")
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
                }
                for c in drift.get("cluster_shift", [])[:6]
            ],
        }

    slices = [
        {
            **s,
            "error_pct": pct(s["error_rate"]),
            "rest_pct": pct(s["rest_error_rate"]),
            # A quantile bin ("[0.5, 3)") or a missing value is not a metadata value to filter by.
            "filterable": not (str(s["value"]).startswith("[") or s["value"] == "(missing)"),
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


@login_required
def sample_list(request, dataset_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id)
    form = SampleFilterForm(dataset.labels, request.GET or None)
    samples = selectors.samples_filtered(dataset, request.GET)
    descending = request.GET.get("order") == "desc"
    after = request.GET.get("after", "")
    if after.isdigit():  # keyset pagination: no OFFSET, however deep the page
        samples = (
            samples.filter(pk__lt=int(after)) if descending else samples.filter(pk__gt=int(after))
        )
    page = list(samples.order_by("-pk" if descending else "pk")[: PAGE + 1])
    more = len(page) > PAGE
    page = page[:PAGE]
    query = request.GET.copy()
    query.pop("after", None)
    next_query = None
    if more:
        query["after"] = page[-1].pk
        next_query = query.urlencode()
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "form": form,
        "samples": page,
        "next_query": next_query,
        "descending": descending,
        "filters": request.GET.urlencode(),
    }
    template = "datasets/samples.html#table" if request.htmx else "datasets/samples.html"
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def sample_detail(request, dataset_id: int, sample_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id)
    sample = get_sample_of_dataset(dataset, sample_id)
    draft = selectors.draft_of_dataset(dataset).filter(sample=sample).first()
    form = RelabelForm(dataset.labels, initial={"label": draft.label if draft else sample.label})
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
        return redirect("datasets:sample", dataset_id=dataset.pk, sample_id=sample.pk)
    neighbours = Sample.objects.filter(dataset=dataset, active=True)
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "sample": sample,
        "form": form,
        "history": selectors.label_history(sample),
        "draft": draft,
        "previous": neighbours.filter(pk__lt=sample.pk)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first(),
        "next": neighbours.filter(pk__gt=sample.pk)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first(),
        **_caps(request, dataset),
    }
    return render(request, "datasets/sample.html", context)


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

    dataset = get_dataset_for_user(request.user, dataset_id)
    if not Sample.objects.filter(dataset=dataset, image=path).exists():
        raise Http404("No such image.")
    try:
        stream = default_storage.open(services.media_path(dataset, path), "rb")
    except FileNotFoundError:
        raise Http404("No such image.") from None
    response = FileResponse(
        stream, content_type=mimetypes.guess_type(path)[0] or "application/octet-stream"
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response
