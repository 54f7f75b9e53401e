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
from apps.explorer import actions
from apps.explorer.query import ORDERINGS, QueryError, parse
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.projects.models import Membership
from apps.rules import services
from apps.rules.access import action_cap, check_action, get_rule_for_user, may_set_action
from apps.rules.models import SCHEDULES, ActionType, Rule, Trigger


def _error(request, exc: ValidationError) -> None:
    messages.error(request, error_text(exc))


def _action_from_post(post) -> dict:
    """The action's settings from the form: only the fields of the chosen action type, each
    named after it (`tag_tag`)."""
    kind = post.get("action_type", "")
    action = actions.find(kind)
    if action is None or not action.rule:
        return {"type": kind}  # the service says which types there are
    return {"type": kind, **action.from_form(post, f"{kind}_")}


def _initial_from_post(post) -> dict:
    """The form's values as posted, to show them again with the error."""
    lists = {f"{a.name}_{name}" for a in actions.for_rules() for name in a.form_lists}
    return {key: post.getlist(key) if key in lists else post.get(key) for key in post}


def _initial_of_action(kind: str, settings: dict) -> dict:
    """The form's fields for an action's settings: lists (ticked boxes) and switches as they
    are, other values as the text of a field."""
    return {
        f"{kind}_{key}": value if isinstance(value, list | bool) else str(value)
        for key, value in settings.items()
        if key != "type"
    }


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
    initial.update(_initial_of_action(rule.action_type, rule.action))
    return initial


def _initial_new(query: str) -> dict:
    initial = {
        "query": query,
        "trigger": Trigger.AFTER_SCORING,
        "max_per_run": 1000,
        "action_type": ActionType.TAG,
    }
    for action in actions.for_rules():
        initial.update(_initial_of_action(action.name, action.form_defaults()))
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
    rule_actions = [(a, may_set_action(membership, a.name)) for a in actions.for_rules()]
    return {
        "action_types": [(a.name, a.label) for a, allowed in rule_actions if allowed],
        "triggers": Trigger.choices,
        "schedules": SCHEDULES,
        "orderings": ORDERINGS,
        # Every action's fields, shown for the type picked. Only what the user may pick has
        # options: a scientist sees no vendors' prices or webhooks' URLs.
        "action_forms": [
            {
                "template": a.form_template,
                "options": a.form_context(dataset, membership) if allowed else {},
            }
            for a, allowed in rule_actions
            if a.form_template
        ],
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
        "initial": _initial_from_post(form) if form else _initial_new(request.GET.get("q", "")),
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
