"""Rule pages: a dataset's rules and a new-rule form; a rule's page with its dry run, switches
and run log."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods, require_POST

from apps.config.exceptions import error_text
from apps.datasets.access import get_dataset_for_user
from apps.datasets.models import Dataset
from apps.explorer.query import ORDERINGS, QueryError, parse
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.projects.models import Membership
from apps.review.models import ReviewSession
from apps.rules import services
from apps.rules.access import action_cap, check_action, get_rule_for_user, may_set_action
from apps.rules.actions import NOTIFY_ROLES, STAFF_ROLES
from apps.rules.models import SCHEDULES, ActionType, Rule, Trigger
from apps.webhooks.models import Webhook


def _error(request, exc: ValidationError) -> None:
    messages.error(request, error_text(exc))


def _action_from_post(post) -> dict:
    """The action's settings from the form: only the fields of the chosen action type."""
    kind = post.get("action_type", "")
    fields = {
        ActionType.TAG: ("tag",),
        ActionType.REVIEW: ("session", "title"),
        ActionType.VENDOR_BATCH: ("vendor", "budget", "price_per_item", "title"),
        ActionType.ACTIVE_PICK: (
            "vendor",
            "count",
            "budget",
            "price_per_item",
            "title",
            "uncertainty",
        ),
        ActionType.NOTIFY: ("message",),
        ActionType.WEBHOOK: ("webhook",),
    }.get(kind, ())
    action: dict = {"type": kind}
    for name in fields:
        value = post.get(f"{kind}_{name}", "").strip()
        if value:
            action[name] = value
    if kind == ActionType.REVIEW and not action.get("session"):
        action["participants"] = post.getlist("review_participants")
        action["blind"] = post.get("review_blind") == "on"
    if kind == ActionType.NOTIFY:
        action["roles"] = post.getlist("notify_roles")
    return action


MULTI = ("review_participants", "notify_roles")


def _initial_from_post(post) -> dict:
    """The form's values as posted, to show them again with the error."""
    return {key: post.getlist(key) if key in MULTI else post.get(key) for key in post}


def _initial_from_rule(rule: Rule) -> dict:
    initial = {
        "name": rule.name,
        "query": json.dumps(rule.query, indent=2) if rule.query else "",
        "ordering": rule.ordering,
        "trigger": rule.trigger,
        "schedule_minutes": str(rule.schedule_minutes or ""),
        "max_per_run": rule.max_per_run,
        "action_type": rule.action_type,
    }
    for key, value in rule.action.items():
        if key == "participants":
            initial["review_participants"] = value
        elif key == "roles":
            initial["notify_roles"] = value
        elif key == "blind":
            initial["review_blind"] = value
        elif key != "type":
            initial[f"{rule.action_type}_{key}"] = str(value)
    return initial


def _definition_from_post(post) -> dict:
    try:
        query = parse(post.get("query", ""))
    except QueryError as exc:
        raise ValidationError({"query": str(exc)}) from None
    return {
        "name": post.get("name", ""),
        "query": query,
        "ordering": post.get("ordering", ""),
        "trigger": post.get("trigger", Trigger.AFTER_SCORING),
        "schedule_minutes": post.get("schedule_minutes") or None,
        "max_per_run": post.get("max_per_run") or 1000,
        "action": _action_from_post(post),
    }


def _form_context(dataset: Dataset, membership: Membership) -> dict:
    voters = [
        m.user
        for m in Membership.objects.filter(project=dataset.project)
        .select_related("user")
        .order_by("user__username")
        if m.can(Cap.COMMENT)
    ]
    return {
        "action_types": [
            (value, label)
            for value, label in ActionType.choices
            if may_set_action(membership, value)
        ],
        "triggers": Trigger.choices,
        "schedules": SCHEDULES,
        "orderings": ORDERINGS,
        "sessions": ReviewSession.objects.filter(
            dataset=dataset, status=ReviewSession.Status.OPEN
        ).order_by("-created_at")[:50],
        "voters": voters,
        # Only what the user may pick: a scientist sees no vendors' prices or webhooks' URLs.
        "vendors": dataset.project.vendors.all() if membership.can(Cap.MANAGE_VENDORS) else [],
        "webhooks": Webhook.objects.filter(project=dataset.project)
        if membership.can(Cap.INTEGRATIONS)
        else [],
        "roles": [(r.value, r.label) for r in STAFF_ROLES],
    }


@login_required
@require_http_methods(["GET", "POST"])
def dataset_rules(request, dataset_id: int):
    """The dataset's rules, and a form for a new one (its query from the sample table)."""
    dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.VIEW)
    membership = get_membership_for_user(request.user, pk=dataset.project_id)
    form = request.POST if request.method == "POST" else None
    if request.method == "POST":
        get_membership_for_user(request.user, pk=dataset.project_id, need=Cap.AUTOMATE)
        try:
            definition = _definition_from_post(request.POST)
            check_action(membership, definition["action"]["type"])
            rule = services.rule_create(dataset=dataset, by=request.user, **definition)
        except ValidationError as exc:
            _error(request, exc)
        else:
            messages.success(
                request, f"Rule “{rule.name}” saved, disabled. Dry-run it, then enable it."
            )
            return redirect("rules:detail", rule_id=rule.pk)
    rules = Rule.objects.filter(dataset=dataset).select_related("created_by")
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "rules": rules,
        "can_automate": membership.can(Cap.AUTOMATE),
        "initial": _initial_from_post(form)
        if form
        else {
            "query": request.GET.get("q", ""),
            "trigger": Trigger.AFTER_SCORING,
            "max_per_run": 1000,
            "action_type": ActionType.TAG,
            "notify_roles": [r.value for r in NOTIFY_ROLES],
        },
        **_form_context(dataset, membership),
    }
    return render(request, "rules/dataset.html", context, status=400 if form else 200)


@login_required
@require_http_methods(["GET"])
def rule_page(request, rule_id: int):
    rule = get_rule_for_user(request.user, rule_id)
    membership = get_membership_for_user(request.user, pk=rule.project_id)
    can_change = may_set_action(membership, rule.action_type)
    context = {
        "rule": rule,
        "dataset": rule.dataset,
        "project": rule.project,
        "runs": rule.runs.all()[:50],
        "query_json": json.dumps(rule.query, indent=2),
        "action_json": json.dumps(rule.action, indent=2),
        "can_change": can_change,
        "action_cap": action_cap(rule.action_type),
        "samples_url": services.samples_url(rule),
    }
    if can_change:  # the form to change it
        context.update(initial=_initial_from_rule(rule), **_form_context(rule.dataset, membership))
    return render(request, "rules/rule.html", context)


@login_required
@require_POST
def rule_dry_run(request, rule_id: int):
    rule = get_rule_for_user(request.user, rule_id, need=Cap.AUTOMATE)
    try:
        result = services.rule_dry_run(rule=rule, by=request.user)
    except ValidationError as exc:
        result = {"error": error_text(exc)}
    context = {"rule": rule, "dataset": rule.dataset, "dry": result, "oob": True}
    if request.htmx:
        # The dry run, and the switch it unlocks (out of band).
        return HttpResponse(
            render_to_string("rules/rule.html#dryrun", context, request=request)
            + render_to_string("rules/rule.html#switch", context, request=request)
        )
    if "error" in result:
        messages.error(request, result["error"])
    else:
        messages.success(
            request, f"Dry run: {result['would_act_on']} of {result['matched']} matching samples."
        )
    return redirect("rules:detail", rule_id=rule.pk)


@login_required
@require_POST
def rule_action(request, rule_id: int, action: str):
    """enable, disable, run (now, in the background), delete, edit."""
    rule = get_rule_for_user(request.user, rule_id, need=Cap.AUTOMATE)
    try:
        if action == "enable":
            services.rule_enable(rule=rule, by=request.user)
            messages.success(request, f"Rule “{rule.name}” is on.")
        elif action == "disable":
            services.rule_disable(rule=rule, by=request.user)
            messages.success(request, f"Rule “{rule.name}” is off.")
        elif action == "run":
            services.rule_run_enqueue(rule=rule)
            messages.success(request, "Queued: the run shows in the log below when done.")
        elif action == "delete":
            services.rule_delete(rule=rule, by=request.user)
            messages.success(request, f"Rule “{rule.name}” deleted.")
            return redirect("rules:dataset", dataset_id=rule.dataset_id)
        elif action == "edit":
            membership = get_membership_for_user(request.user, pk=rule.project_id)
            definition = _definition_from_post(request.POST)
            check_action(membership, definition["action"]["type"])
            services.rule_update(rule=rule, by=request.user, **definition)
            messages.success(request, "Saved. Dry-run the rule again before it runs.")
        else:
            from django.http import Http404

            raise Http404("No such action.")
    except ValidationError as exc:
        _error(request, exc)
    return redirect("rules:detail", rule_id=rule.pk)
