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


@login_required
def health(request, dataset_id: int):
    """Dataset health: what the newest finished scoring run found, each count a link to its samples."""
    from apps.quality.models import Flag, RunStatus
    from apps.quality.selectors import latest_done_run

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
    confusion = summary.get("confusion")
    if confusion:
        most = max(max(row) for row in confusion) or 1
        confusion = [
            {
                "label": label,
                "cells": [
                    {"count": n, "diagonal": i == j, "shade": round(n / most, 2)}
                    for j, n in enumerate(row)
                ],
            }
            for i, (label, row) in enumerate(zip(classes, confusion, strict=True))
        ]
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "run": run,
        "summary": summary,
        "tiles": tiles,
        "confusion": confusion,
        "classes": classes,
        "distribution": [
            {"split": split, **row} for split, row in summary.get("label_distribution", {}).items()
        ],
        "noise": [
            {"split": split, **row} for split, row in summary.get("noise_by_split", {}).items()
        ],
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
