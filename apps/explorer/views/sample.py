"""The sample page: its content, scores, neighbours and label history, a relabel or removal
for the draft, and steps to the previous and next sample of the table it was opened from."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.core.links import sample_table_url
from apps.core.panels import panels_context
from apps.datasets import selectors as dataset_selectors
from apps.datasets import services as dataset_services
from apps.datasets.access import get_dataset_for_user, get_sample_of_dataset
from apps.datasets.forms import RelabelForm
from apps.datasets.views import dataset_caps
from apps.explorer import selectors
from apps.explorer.views import stale_context
from apps.explorer.views.table import EXPLORER_KEYS, exploration_of_request
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap

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
def sample_detail(request, dataset_id: int, sample_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id)
    sample = get_sample_of_dataset(dataset, sample_id)
    draft = dataset_selectors.draft_of_dataset(dataset).filter(sample=sample).first()
    found, _error = exploration_of_request(request, dataset)
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
                dataset_services.sample_remove(
                    sample=sample, by=request.user, reason=request.POST.get("reason", "")
                )
                messages.success(request, "Removal added to the draft.")
            elif form.is_valid():
                dataset_services.sample_relabel(sample=sample, by=request.user, **form.cleaned_data)
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
        neighbours = dataset_selectors.similar_samples(dataset, sample.pk, limit=10)
    except LookupError:
        neighbours = []
    history = list(dataset_selectors.label_history(sample))
    membership = get_membership_for_user(request.user, pk=dataset.project_id)
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "sample": sample,
        "form": form,
        "history": history,
        "can_comment": membership.can(Cap.COMMENT),
        "draft": draft,
        "run": found.run,
        "score": score,
        "score_rows": _score_rows(score),
        "suggested": suggested,
        "tags": dataset_selectors.tags_of_samples([sample.pk]).get(sample.pk, []),
        "neighbours": neighbours,
        "state": urlencode(back),
        "previous": previous_id,
        "next": next_id,
        "table_url": reverse("datasets:samples", args=[dataset.pk])
        + ("?" + urlencode(back) if back else ""),
        "similar_url": sample_table_url(
            dataset.pk, {"similar_to": sample.pk, "min_similarity": 0.9}, "-similarity"
        ),
        **dataset_caps(request, dataset),
        **stale_context(request, dataset, found.run),
    }
    context.update(panels_context("sample", request, context))
    return render(request, "explorer/sample.html", context)
