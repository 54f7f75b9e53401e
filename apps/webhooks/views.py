"""Webhook pages: a project's webhooks with their latest deliveries (add, turn on or off, rotate
the secret, send a test, delete), and one webhook's page with its whole delivery log."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.webhooks import selectors, services
from apps.webhooks.access import get_webhook_for_user
from apps.webhooks.forms import WebhookEditForm, WebhookForm


def _project_page(request, project, form=None, status: int = 200):
    template = "webhooks/project.html"
    if request.htmx and form is None:
        template += "#webhooks"
    return render(
        request,
        template,
        {
            "project": project,
            "webhooks": selectors.webhooks_of_project(project),
            "form": form or WebhookForm(),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_webhooks(request, slug: str):
    """The project's webhooks and their latest deliveries; the form to add one."""
    project = get_membership_for_user(request.user, slug=slug, need=Cap.INTEGRATIONS).project
    if request.method == "POST":
        form = WebhookForm(request.POST)
        if form.is_valid():
            try:
                webhook = services.webhook_create(
                    project=project, by=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Webhook added: {webhook.url}. Send a test to check it.")
                return redirect("webhooks:project", slug=project.slug)
        return _project_page(request, project, form=form, status=400)
    return _project_page(request, project)


SHOWN_BODY_CHARS = 20_000

ACTIONS = ("toggle", "rotate", "ping", "delete")


@login_required
@require_POST
def webhook_action(request, webhook_id: int, action: str):
    """Send a test, turn on or off, rotate the secret, or delete; from either page."""
    if action not in ACTIONS:
        raise Http404("No such action.")
    webhook = get_webhook_for_user(request.user, webhook_id)
    project = webhook.project
    if action == "toggle":
        webhook = services.webhook_update(
            webhook=webhook, by=request.user, active=not webhook.active
        )
        messages.success(request, f"{webhook.url} turned {'on' if webhook.active else 'off'}.")
    elif action == "rotate":
        services.webhook_rotate_secret(webhook=webhook, by=request.user)
        messages.success(request, f"New secret for {webhook.url}: update the receiver.")
    elif action == "ping":
        services.webhook_ping(webhook=webhook, by=request.user)
        messages.success(request, f"Test send to {webhook.url} queued.")
    else:
        services.webhook_delete(webhook=webhook, by=request.user)
        messages.success(request, f"Webhook {webhook.url} deleted.")
    from_detail = request.POST.get("next") == "detail"
    if request.htmx and not from_detail:
        return _project_page(request, project)  # the list swapped in place
    if from_detail and action != "delete":
        target = reverse("webhooks:detail", args=[webhook_id])
    else:
        target = reverse("webhooks:project", args=[project.slug])
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@login_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request, webhook_id: int):
    """One webhook: change it, and read its delivery log with each payload and attempt."""
    webhook = get_webhook_for_user(request.user, webhook_id)
    status = 200
    if request.method == "POST":
        form = WebhookEditForm(request.POST)
        if form.is_valid():
            try:
                services.webhook_update(webhook=webhook, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Webhook saved.")
                return redirect("webhooks:detail", webhook_id=webhook.pk)
        status = 400
    else:
        form = WebhookEditForm(
            initial={
                "url": webhook.url,
                "events": webhook.events,
                "description": webhook.description,
                "active": webhook.active,
            }
        )
    before = request.GET.get("before", "")
    deliveries = selectors.deliveries_of_webhook(
        webhook, before=int(before) if before.isdigit() else None
    )
    for delivery in deliveries:
        delivery.webhook = webhook
        body = json.dumps(
            services.delivery_envelope(delivery),
            cls=DjangoJSONEncoder,
            indent=2,
            ensure_ascii=False,
        )
        if len(body) > SHOWN_BODY_CHARS:  # a rule's matches can run long; the API has it all
            body = body[:SHOWN_BODY_CHARS] + f"\n… ({len(body):,} characters in all)"
        delivery.body = body
    return render(
        request,
        "webhooks/detail.html",
        {
            "webhook": webhook,
            "project": webhook.project,
            "form": form,
            "deliveries": deliveries,
            "older": deliveries[-1].pk if len(deliveries) == selectors.LOG_PAGE else None,
            "paged": before.isdigit(),
        },
        status=status,
    )
