"""Dataset pages: the overview with its imports, versions and their differences, and its images."""

from __future__ import annotations

import io
import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.config.forms import add_service_error
from apps.core.csv import csv_writer
from apps.core.panels import panels_context
from apps.datasets import selectors, services
from apps.datasets.access import (
    get_dataset_for_user,
    get_import_of_dataset,
    get_upload_of_dataset,
    media_granted,
)
from apps.datasets.forms import CommitForm, DatasetForm, ImportForm
from apps.datasets.importing.mapping import (
    ROLE_NAMES,
    ROLES,
    role_by_name,
    role_problems,
    roles_for,
)
from apps.datasets.importing.readers import FileRefused, guess_format
from apps.datasets.importing.values import image_path
from apps.datasets.models import Dataset, JobStatus, Modality, Sample
from apps.datasets.selectors import media_open
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap


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


def dataset_caps(request, dataset) -> dict:
    """What the user may do to the dataset, for its pages."""
    membership = get_membership_for_user(request.user, pk=dataset.project_id)
    return {"can_edit": membership.can(Cap.EDIT_DATA), "can_curate": membership.can(Cap.CURATE)}


def _import_form(dataset, *args, staged: bool = False) -> ImportForm:
    return ImportForm(
        *args,
        preview_url=reverse("datasets:import_preview", args=[dataset.pk]),
        staged=staged,
    )


def _staged_upload(request, dataset):
    """The upload the preview kept, named by the form; 404 when it is not this user's."""
    raw = request.POST.get("upload", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404("No such upload.")
    upload = get_upload_of_dataset(dataset, int(raw), request.user)
    if upload.completed_at is not None:
        raise Http404("No such upload.")
    return upload


def _posted_roles(request, header: list[str], *, tabular: bool) -> list[str | None]:
    """The role chosen for each column in the preview; by its name where none was posted."""
    roles = roles_for(header, None, tabular=tabular)
    for i in range(len(header)):
        chosen = request.POST.get(f"role_{i}")
        if chosen in ROLES:
            roles[i] = chosen
    return roles


@login_required
@require_http_methods(["GET", "POST"])
def dataset_detail(request, dataset_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id)
    form = _import_form(dataset)
    if request.method == "POST":
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        staged = _staged_upload(request, dataset) if not request.FILES.get("file") else None
        form = _import_form(dataset, request.POST, request.FILES, staged=staged is not None)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if staged is not None:
                    _import_staged(request, dataset, staged, data)
                    name = staged.file_name
                else:
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
                    name = data["file"].name
            except FileRefused as exc:
                form.add_error("format", str(exc))
            except ValidationError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, f"Import of {name} queued.")
                form = _import_form(dataset)
                if request.htmx:  # the preview is done with
                    response = render(
                        request,
                        "datasets/detail.html#imports",
                        _detail_context(request, dataset, form),
                    )
                    response.write('<div id="import-preview" hx-swap-oob="true"></div>')
                    return response
        if request.htmx:
            return render(
                request, "datasets/detail.html#imports", _detail_context(request, dataset, form)
            )
    return render(request, "datasets/detail.html", _detail_context(request, dataset, form))


def _import_staged(request, dataset, upload, data) -> None:
    """Import the file the preview kept, with the roles chosen there."""
    fmt = data["format"] or guess_format(upload.file_name)
    generate_ids = request.POST.get("generate_ids") == "on"
    columns = None
    if fmt != "archive":
        tabular = dataset.modality == Modality.TABULAR
        header = selectors.upload_header(upload, fmt)
        roles = _posted_roles(request, header, tabular=tabular)
        problems = role_problems(
            header, roles, modality=dataset.modality, generate_ids=generate_ids
        )
        if problems:
            raise ValidationError(
                "The preview shows problems to fix first: "
                + "; ".join(m if c == "-" else f"{c}: {m}" for c, m in problems)
            )
        # Only what differs from the names' own roles: a file in the conventions maps nothing.
        columns = {
            c: r
            for c, r in zip(header, roles, strict=True)
            if r != role_by_name(c, tabular=tabular)
        } or None
    services.upload_complete(
        upload=upload,
        fmt=fmt,
        on_duplicate=data["on_duplicate"],
        extend_labels=data["extend_labels"],
        columns=columns,
        generate_ids=generate_ids,
    )


@login_required
@require_POST
def import_preview(request, dataset_id: int):
    """The first rows of a chosen file, the format read, and a role for each column, checked
    as the import would check them. The file is kept as an upload of this user's, in Loupe's
    upload folder under a name of its own, until it is imported, replaced or purged; nothing
    is written to the dataset."""
    dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
    tabular = dataset.modality == Modality.TABULAR
    context: dict = {"dataset": dataset}
    file = request.FILES.get("file")
    upload = _staged_upload(request, dataset)
    try:
        if file is not None:
            if upload is not None:  # another file chosen: the one before is done with
                services.upload_discard(upload=upload)
                upload = None
            fmt = request.POST.get("format") or guess_format(file.name)
            if fmt == "archive":
                context["note"] = (
                    "An archive is imported as it is: its table's columns go by their names."
                )
                return render(request, "datasets/import_preview.html", context)
            upload = services.upload_stage(dataset=dataset, by=request.user, file=file)
        elif upload is None:
            return render(request, "datasets/import_preview.html", context)
        else:
            fmt = request.POST.get("format") or guess_format(upload.file_name)
        preview = selectors.upload_preview(upload, fmt)
    except FileRefused as exc:
        if upload is not None:
            services.upload_discard(upload=upload)
        context["error"] = str(exc)
        return render(request, "datasets/import_preview.html", context)
    except ValidationError as exc:
        context["error"] = " ".join(exc.messages)
        return render(request, "datasets/import_preview.html", context)
    roles = (
        roles_for(preview.header, None, tabular=tabular)
        if file is not None
        else _posted_roles(request, preview.header, tabular=tabular)
    )
    generate_ids = request.POST.get("generate_ids") == "on" and file is None
    problems = role_problems(
        preview.header, roles, modality=dataset.modality, generate_ids=generate_ids
    )
    choices = [(r, ROLE_NAMES[r]) for r in ROLES if tabular or r != "feature"]
    context.update(
        {
            "upload": upload,
            "fmt": fmt,
            "preview": preview,
            "columns": [
                {"name": c, "role": r, "choices": choices}
                for c, r in zip(preview.header, roles, strict=True)
            ],
            "problems": problems,
            "generate_ids": generate_ids,
            "has_id": "id" in roles,
        }
    )
    return render(request, "datasets/import_preview.html", context)


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
    context = {
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
        **dataset_caps(request, dataset),
    }
    # Other apps' parts of the page, such as quality's scoring panel.
    context.update(panels_context("dataset", request, context))
    return context


@login_required
def import_status(request, dataset_id: int, job_id: int):
    """The imports panel, polled while a job runs."""
    dataset = get_dataset_for_user(request.user, dataset_id)
    job = get_import_of_dataset(dataset, job_id)
    response = render(
        request,
        "datasets/detail.html#imports",
        _detail_context(request, dataset, _import_form(dataset)),
    )
    if request.htmx and job.status == "done":
        # The import changed the whole page (counts, versions, spaces, scoring): reload it once.
        response["HX-Refresh"] = "true"
    return response


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
        **dataset_caps(request, dataset),
    }
    return render(request, "datasets/versions.html", context)


@login_required
def media(request, dataset_id: int, path: str):
    """An image of the dataset, after the project's access check: only a path some sample of
    this dataset points at is served, and only to those who may see the dataset."""
    try:
        path = image_path(path)
    except ValueError:
        raise Http404("No such image.") from None
    # Some may see an image without seeing its dataset: a vendor annotator, those of the items
    # assigned to them.
    if media_granted(request.user, dataset_id, path):
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


@login_required
@require_safe
def sample_file(request, dataset_id: int):
    """A small CSV in the import columns for this dataset's kind of data and labels: a file to
    start from."""
    dataset = get_dataset_for_user(request.user, dataset_id)
    labels = list(dataset.labels) or ["cat", "dog"]
    content = {
        "text": ("text", ["The parcel arrived broken", "How do I change my address?"]),
        "image": ("image", ["images/0001.jpg", "images/0002.jpg"]),
    }.get(dataset.modality)
    rows = []
    if content is None:  # tabular: the feature columns are the file's own
        header = ["id", "feature_a", "feature_b", "label", "split", "meta_source"]
        rows = [
            ["s1", "3.5", "12", labels[0], "train", "web"],
            ["s2", "1.25", "7", "", "test", "app"],
        ]
    else:
        header = ["id", content[0], "label", "split", "meta_source"]
        rows = [
            ["s1", content[1][0], labels[0], "train", "web"],
            ["s2", content[1][1], labels[-1], "test", "app"],
            ["s3", content[1][0] + " again", "", "unlabeled", "web"],
        ]
    out = io.StringIO()
    csv_writer(out).writerows([header, *rows])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="loupe-sample-{dataset.modality}.csv"'
    return response
