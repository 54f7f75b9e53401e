"""Vendor pages: the project's vendors and batches, a batch's page (send, QA, accept, return,
export, import), and the vendor's workspace (their batches and the keyboard labelling page)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from apps.accounts.models import User
from apps.datasets.access import get_dataset_for_user
from apps.explorer.actions import selection_of_form
from apps.explorer.query import QueryError
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.vendors import exchange, services
from apps.vendors.access import (
    get_batch_for_staff,
    get_batch_for_vendor,
    get_item_of_batch,
    get_vendor_to_link,
)
from apps.vendors.models import Batch, BatchItem, Vendor
from apps.vendors.selectors import (
    acceptance_level,
    acceptance_preview,
    annotators_in,
    batch_acceptance,
    batch_annotators,
    vendor_quality,
    vendors_linkable,
)


def _error(request, exc) -> None:
    messages.error(
        request, " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    )


@login_required
@require_http_methods(["GET", "POST"])
def vendors(request, slug: str):
    """The project's vendors and batches; managers add vendors and their annotators, and share
    a vendor at home in another project they manage."""
    membership = get_membership_for_user(request.user, slug=slug, need=Cap.VIEW)
    project = membership.project
    if request.method == "POST":
        get_membership_for_user(request.user, slug=slug, need=Cap.MANAGE_VENDORS)
        try:
            if request.POST.get("action") == "acceptance":
                policy = services.acceptance_level_set(
                    project=project, level=request.POST.get("level", ""), by=request.user
                )
                messages.success(request, f"Batches are accepted from {policy.level:.0%} on.")
            elif request.POST.get("action") == "member":
                vendor = project.vendors.filter(pk=int(request.POST.get("vendor") or 0)).first()
                # Only the project's members: a different answer for an account outside it
                # would tell a manager which usernames exist.
                user = User.objects.filter(
                    username=request.POST.get("username", "").strip(),
                    memberships__project=project,
                ).first()
                if vendor is None or user is None:
                    raise ValidationError("Pick a vendor and a user of the project.")
                services.vendor_member_add(vendor=vendor, project=project, user=user)
                messages.success(request, f"{user.username} now labels for {vendor.name}.")
            elif request.POST.get("action") == "link":
                vendor = get_vendor_to_link(request.user, request.POST.get("vendor", ""))
                services.vendor_link(vendor=vendor, project=project, by=request.user)
                messages.success(request, f"Vendor {vendor.name} works for {project.name} too.")
            else:
                vendor = services.vendor_create(
                    project=project,
                    name=request.POST.get("name", ""),
                    contact=request.POST.get("contact", ""),
                    price_per_item=request.POST.get("price_per_item") or 0,
                    currency=request.POST.get("currency") or "USD",
                    turnaround_days=int(request.POST.get("turnaround_days") or 7),
                )
                messages.success(request, f"Vendor {vendor.name} works for {project.name}.")
        except (ValidationError, ValueError) as exc:
            _error(request, exc)
        return redirect("vendors:project", slug=slug)
    batches = Batch.objects.filter(project=project).select_related("vendor", "dataset")
    can_manage = membership.can(Cap.MANAGE_VENDORS)
    return render(
        request,
        "vendors/project.html",
        {
            "project": project,
            "vendors": [
                {
                    "vendor": v,
                    "annotators": annotators_in(v, project.pk).select_related("user"),
                    "linked": v.home_project_id != project.pk,
                    **vendor_quality(v, project),
                }
                for v in project.vendors.all()
            ],
            "batches": batches,
            "overdue": set(services.batches_overdue(project).values_list("pk", flat=True)),
            "can_manage": can_manage,
            "linkable": vendors_linkable(request.user, project) if can_manage else [],
            "acceptance_level": acceptance_level(project),
        },
    )


@login_required
@require_POST
def batch_create(request, dataset_id: int):
    """A draft batch from the sample table's selection (or all that match)."""
    dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.MANAGE_VENDORS)
    try:
        selection = selection_of_form(dataset, request.POST)
        vendor = Vendor.objects.filter(
            pk=int(request.POST.get("vendor") or 0), projects=dataset.project
        ).first()
        if vendor is None:
            raise ValidationError("Pick a vendor of this project.")
        batch = services.batch_create(
            dataset=dataset,
            vendor=vendor,
            by=request.user,
            title=request.POST.get("batch_title", ""),
            instructions=request.POST.get("instructions", ""),
            query=selection.query,
            ordering=selection.ordering,
            run=selection.run,
            ids=selection.ids,
            due_date=request.POST.get("batch_due") or None,
            labels_per_item=int(request.POST.get("labels_per_item") or 1),
            gold_share=float(request.POST.get("gold_share") or 0),
            priority=int(request.POST.get("priority") or 2),
        )
    except (QueryError, ValidationError, ValueError) as exc:
        _error(request, exc)
        return redirect(request.POST.get("back") or reverse("datasets:samples", args=[dataset.pk]))
    messages.success(request, f"Draft batch “{batch.title}” made: check it, then send it.")
    return redirect("vendors:batch", batch_id=batch.pk)


@login_required
@require_safe
def batch_page(request, batch_id: int):
    batch = get_batch_for_staff(request.user, batch_id)
    membership = get_membership_for_user(request.user, pk=batch.project_id)
    items = batch.items.select_related("sample", "qa_by").prefetch_related("labels__annotator")
    sample_size = request.GET.get("sample", "")
    if sample_size.isdigit() and int(sample_size) > 0:
        # QA by sampling: a random handful of the labelled items rather than all of them.
        items = items.filter(pk__in=services.qa_sample(batch, int(sample_size)))
    items = list(items)
    preview = acceptance_preview(batch) if batch.status != Batch.Status.ACCEPTED else None
    return render(
        request,
        "vendors/batch.html",
        {
            "batch": batch,
            "project": batch.project,
            "dataset": batch.dataset,
            "items": items,
            "stats": services.batch_stats(batch),
            "annotators": batch_annotators(batch),
            "can_manage": membership.can(Cap.MANAGE_VENDORS),
            "can_qa": membership.can(Cap.QA),
            "sampled": sample_size.isdigit() and int(sample_size) > 0,
            "acceptance": batch_acceptance(batch, preview),
            "preview": preview,
        },
    )


@login_required
@require_POST
def batch_action(request, batch_id: int, action: str):
    if action not in services.BATCH_ACTIONS:
        raise Http404("No such action.")
    cap, service = services.BATCH_ACTIONS[action]
    batch = get_batch_for_staff(request.user, batch_id, need=cap)
    extra = services.batch_action_extra(
        action, request.POST, site_url=request.build_absolute_uri("/")
    )
    try:
        batch = service(batch=batch, by=request.user, **extra)
    except ValidationError as exc:
        _error(request, exc)
    else:
        messages.success(request, f"The batch is {batch.get_status_display().lower()}.")
    # Sending and accepting post through htmx for their confirmation dialog: reload the page.
    target = reverse("vendors:batch", args=[batch.pk])
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@login_required
@require_POST
def item_review(request, batch_id: int, item_id: int):
    batch = get_batch_for_staff(request.user, batch_id, need=Cap.QA)
    item = get_item_of_batch(batch, item_id)
    try:
        services.item_review(
            item=item,
            by=request.user,
            accept=request.POST.get("verdict") == "accept",
            note=request.POST.get("note", ""),
        )
    except ValidationError as exc:
        _error(request, exc)
    return redirect(reverse("vendors:batch", args=[batch.pk]) + f"#item-{item.pk}")


@login_required
@require_safe
def batch_export(request, batch_id: int):
    """Label Studio task JSON (?format=label-studio, &predictions=1 for pre-annotations), its
    labelling config (?format=label-studio-config), or CSV."""
    batch = get_batch_for_staff(request.user, batch_id, need=Cap.MANAGE_VENDORS)
    return exchange.export_response(
        batch,
        request.GET.get("format", "label-studio"),
        request.GET.get("predictions") == "1",
        by=request.user,
    )


@login_required
@require_POST
def batch_import(request, batch_id: int):
    """The vendor's Label Studio export (JSON) or CSV, all or nothing."""
    batch = get_batch_for_staff(request.user, batch_id, need=Cap.MANAGE_VENDORS)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a file.")
        return redirect("vendors:batch", batch_id=batch.pk)
    try:
        count = exchange.import_file(
            batch=batch, by=request.user, name=upload.name, data=upload.read()
        )
    except exchange.Refused as refused:
        problems = "; ".join(f"{p['where']}: {p['message']}" for p in refused.problems[:20])
        messages.error(request, f"Nothing imported. {problems}")
    else:
        messages.success(
            request,
            ngettext(
                "%(n)s label imported from %(file)s.", "%(n)s labels imported from %(file)s.", count
            )
            % {"n": count, "file": upload.name},
        )
    return redirect("vendors:batch", batch_id=batch.pk)


# --- The vendor's workspace -----------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def work(request, batch_id: int):
    """The labelling page: one item at a time, keys 1–9 for classes, j/k, s to skip."""
    batch = get_batch_for_vendor(request.user, batch_id)
    items = batch.items.order_by("position")
    total = items.count()
    if request.method == "POST":
        if request.POST.get("action") == "submit":
            try:
                services.batch_submit(batch=batch, by=request.user)
            except ValidationError as exc:
                _error(request, exc)
            else:
                messages.success(request, "Submitted for QA. Thank you.")
            return redirect("vendors:work", batch_id=batch.pk)
        item_id = request.POST.get("item", "")
        item = get_item_of_batch(batch, int(item_id) if item_id.isdigit() else 0)
        try:
            services.label_set(
                item=item,
                annotator=request.user,
                label=request.POST.get("label") or None,
                skip_reason=request.POST.get("skip_reason", ""),
            )
        except ValidationError as exc:
            _error(request, exc)
            return redirect(reverse("vendors:work", args=[batch.pk]) + f"?i={item.position}")
        following = item.position + 1 if item.position + 1 < total else item.position
        return redirect(reverse("vendors:work", args=[batch.pk]) + f"?i={following}")
    position = request.GET.get("i", "")
    if not position.isdigit():
        mine = batch.items.filter(labels__annotator=request.user).values("pk")
        first = items.exclude(pk__in=mine).first() or items.first()
        position = first.position if first else 0
    item = items.select_related("sample").filter(position=int(position)).first()
    done = batch.items.filter(labels__annotator=request.user).distinct().count()
    mine = item.labels.filter(annotator=request.user).first() if item else None
    return render(
        request,
        "vendors/work.html",
        {
            "batch": batch,
            "project": batch.project,
            "dataset": batch.dataset,
            "item": item,
            "sample": item.sample if item else None,
            "mine": mine,
            "number": int(position) + 1,
            "total": total,
            "done": done,
            "percent": round(100 * done / total) if total else 0,
            "previous": int(position) - 1 if int(position) > 0 else None,
            "next": int(position) + 1 if int(position) + 1 < total else None,
            "labels": list(enumerate(batch.dataset.labels[:9], start=1)),
            "more_labels": batch.dataset.labels[9:],
            "returned": batch.items.filter(status=BatchItem.Status.RETURNED).count(),
            "can_submit": batch.status in services.WORKING,
        },
    )
