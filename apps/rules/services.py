"""Rules: define them, dry-run them, and run them after scoring or on a schedule.

A run is one transaction under a lock on the rule: it reads the query's matches, leaves out
the samples the rule already acted on (RuleHit), acts on the rest up to its caps, and records
the hits with the run. A crash rolls all of it back; a redelivered task finds the hits and
does not act twice.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from apps.audit.services import audit_record
from apps.config.exceptions import error_text
from apps.core import events
from apps.core.links import sample_table_url
from apps.core.tasks import task_enqueue
from apps.datasets.models import Dataset, Embedding, ModelRun, Prediction, Sample, Split
from apps.explorer.query import ORDERINGS, QueryError, compile_query
from apps.projects.capabilities import Cap, Role
from apps.projects.models import Membership
from apps.quality.models import ScoringRun
from apps.rules.access import may_set_action
from apps.rules.models import SCHEDULES, ActionType, Rule, RuleHit, RuleRun, Trigger

log = logging.getLogger(__name__)

# Stands for "some scoring run" when a query is checked: a rule may name scores before the
# dataset's first run.
_ANY_RUN = ScoringRun(version=0)
MAX_PER_RUN = 50_000
PICK_POOL = 20_000  # unlabelled matches the active-learning pick chooses among, at most
PREVIEW = 10
NOTIFY_ROLES = (Role.OWNER, Role.MANAGER, Role.SCIENTIST)
STAFF_ROLES = (Role.OWNER, Role.MANAGER, Role.SCIENTIST, Role.REVIEWER, Role.VIEWER)


# --- Defining rules ---------------------------------------------------------------------------


def _positive_int(value, name: str, *, low: int = 1, high: int = MAX_PER_RUN) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: f"{name} must be a whole number."}) from None
    if not low <= number <= high:
        raise ValidationError({name: f"{name} must be between {low:,} and {high:,}."})
    return number


def _text(value, name: str, *, limit: int) -> str:
    """An optional piece of text: a string (or nothing), cut to `limit` characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError({name: f"{name} must be text."})
    return value.strip()[:limit]


def _names(value, name: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError({name: f"{name} must be a list of {what}."})
    return list(dict.fromkeys(value))


def _money(value, name: str) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError({name: f"{name} must be an amount, like 250 or 12.50."}) from None
    if not amount.is_finite() or amount <= 0:
        raise ValidationError({name: f"{name} must be more than 0."})
    return str(amount)


def _clean_action(dataset: Dataset, action) -> dict:
    """The action's settings, checked against the project: what a run will need exists."""
    from apps.explorer.services import _tag_name
    from apps.review.models import ReviewSession

    if not isinstance(action, dict):
        raise ValidationError({"action": "The action must be an object with a type."})
    kind = action.get("type")
    if kind not in ActionType.values:
        raise ValidationError(
            {"action": f"Unknown action type {kind!r}; use one of {', '.join(ActionType.values)}."}
        )
    project = dataset.project
    known = {
        ActionType.TAG: {"tag"},
        ActionType.REVIEW: {"session", "title", "participants", "blind"},
        ActionType.VENDOR_BATCH: {"vendor", "budget", "price_per_item", "title", "instructions"},
        ActionType.ACTIVE_PICK: {
            "vendor",
            "count",
            "budget",
            "price_per_item",
            "title",
            "instructions",
            "uncertainty",
        },
        ActionType.NOTIFY: {"roles", "message"},
        ActionType.WEBHOOK: {"webhook"},
    }[kind]
    unknown = sorted(set(action) - known - {"type"})
    if unknown:
        raise ValidationError(
            {
                "action": f"A {kind} action has no setting {unknown[0]!r}; it takes {', '.join(sorted(known))}."
            }
        )
    clean: dict = {"type": kind}
    if kind == ActionType.TAG:
        clean["tag"] = _tag_name(_text(action.get("tag"), "tag", limit=1000))
    elif kind == ActionType.REVIEW:
        if action.get("session") not in (None, ""):
            session_id = _positive_int(action["session"], "session", high=2**31 - 1)
            session = ReviewSession.objects.filter(pk=session_id, dataset=dataset).first()
            if session is None:
                raise ValidationError({"session": "No such review session in this dataset."})
            if session.status != ReviewSession.Status.OPEN:
                raise ValidationError({"session": f"Session “{session.title}” is closed."})
            clean["session"] = session.pk
        else:
            names = _names(action.get("participants") or [], "participants", "usernames")
            if not names:
                raise ValidationError(
                    {"participants": "Name the reviewers of the new session (usernames)."}
                )
            members = dict(
                Membership.objects.filter(project=project, user__username__in=names).values_list(
                    "user__username", "role"
                )
            )
            for name in names:
                if name not in members or not Membership(role=members[name]).can(Cap.COMMENT):
                    raise ValidationError({"participants": f"{name} cannot vote in this project."})
            clean["participants"] = names
            if title := _text(action.get("title"), "title", limit=200):
                clean["title"] = title
            clean["blind"] = bool(action.get("blind", False))
    elif kind in (ActionType.VENDOR_BATCH, ActionType.ACTIVE_PICK):
        from apps.vendors.models import Vendor

        vendor_id = _positive_int(action.get("vendor"), "vendor", high=2**31 - 1)
        vendor = Vendor.objects.filter(pk=vendor_id, projects=project).first()
        if vendor is None:
            raise ValidationError({"vendor": "No such vendor working for this project."})
        clean["vendor"] = vendor.pk
        if kind == ActionType.VENDOR_BATCH or action.get("budget") not in (None, ""):
            clean["budget"] = _money(action.get("budget"), "budget")
        if action.get("price_per_item") not in (None, ""):
            clean["price_per_item"] = _money(action["price_per_item"], "price_per_item")
        elif not vendor.price_per_item and "budget" in clean:
            raise ValidationError(
                {"price_per_item": f"{vendor.name} has no price per item: give one for the budget."}
            )
        for key, limit in (("title", 200), ("instructions", 10_000)):
            if text := _text(action.get(key), key, limit=limit):
                clean[key] = text
        if kind == ActionType.ACTIVE_PICK:
            clean["count"] = _positive_int(action.get("count"), "count", high=5_000)
            clean["uncertainty"] = action.get("uncertainty") or "margin"
            if clean["uncertainty"] not in ("margin", "entropy"):
                raise ValidationError({"uncertainty": "Use margin or entropy."})
    elif kind == ActionType.NOTIFY:
        roles = _names(action.get("roles") or list(NOTIFY_ROLES), "roles", "roles")
        if any(r not in STAFF_ROLES for r in roles):
            raise ValidationError(
                {"roles": f"Notify members by role: {', '.join(r.value for r in STAFF_ROLES)}."}
            )
        clean["roles"] = sorted(set(roles))
        if message := _text(action.get("message"), "message", limit=200):
            clean["message"] = message
    elif kind == ActionType.WEBHOOK:
        from apps.webhooks.models import Webhook

        hook_id = _positive_int(action.get("webhook"), "webhook", high=2**31 - 1)
        if not Webhook.objects.filter(pk=hook_id, project=project).exists():
            raise ValidationError({"webhook": "No such webhook in this project."})
        clean["webhook"] = hook_id
    return clean


def _clean_definition(dataset: Dataset, fields: dict) -> dict:
    clean: dict = {}
    if "name" in fields:
        name = str(fields["name"] or "").strip()
        if not name or len(name) > 120:
            raise ValidationError({"name": "Give the rule a name of 1 to 120 characters."})
        same_name = Rule.objects.filter(dataset=dataset, name=name)
        if fields.get("pk") is not None:
            same_name = same_name.exclude(pk=fields["pk"])
        if same_name.exists():
            raise ValidationError({"name": f"The dataset already has a rule named “{name}”."})
        clean["name"] = name
    if "query" in fields:
        query = fields["query"] if fields["query"] is not None else {}
        # Scores may be named before the first scoring run: the rule runs after it.
        try:
            compile_query(dataset, _ANY_RUN, query)
        except QueryError as exc:
            raise ValidationError({"query": str(exc)}) from None
        clean["query"] = query
    if "ordering" in fields:
        ordering = str(fields["ordering"] or "").strip()
        if ordering and ordering.lstrip("-") not in ORDERINGS:
            raise ValidationError(
                {"ordering": f"{ordering!r} cannot be sorted by; use {', '.join(ORDERINGS)}."}
            )
        clean["ordering"] = ordering
    if "trigger" in fields:
        if fields["trigger"] not in Trigger.values:
            raise ValidationError({"trigger": f"Use {' or '.join(Trigger.values)}."})
        clean["trigger"] = fields["trigger"]
    if "schedule_minutes" in fields:
        minutes = fields["schedule_minutes"]
        allowed = [m for m, _ in SCHEDULES]
        if minutes in (None, ""):
            clean["schedule_minutes"] = None
        elif _positive_int(minutes, "schedule_minutes", high=10**6) not in allowed:
            raise ValidationError(
                {"schedule_minutes": f"Run every {', '.join(map(str, allowed))} minutes."}
            )
        else:
            clean["schedule_minutes"] = int(minutes)
    if "max_per_run" in fields:
        clean["max_per_run"] = _positive_int(fields["max_per_run"], "max_per_run")
    if "action" in fields:
        clean["action"] = _clean_action(dataset, fields["action"])
        clean["action_type"] = clean["action"]["type"]
    return clean


def _check_schedule(rule: Rule) -> None:
    if rule.trigger == Trigger.SCHEDULE and not rule.schedule_minutes:
        raise ValidationError({"schedule_minutes": "A scheduled rule needs a schedule."})


def _definition(rule: Rule) -> dict:
    return {
        "query": rule.query,
        "ordering": rule.ordering,
        "trigger": rule.trigger,
        "schedule_minutes": rule.schedule_minutes,
        "action": rule.action,
        "max_per_run": rule.max_per_run,
    }


def _audit(rule: Rule, by, action: str, detail: dict | None = None) -> None:
    audit_record(
        actor=by,
        action=action,
        project=rule.project,
        target=f"rule “{rule.name}” on {rule.dataset.name}",
        detail={"rule": rule.pk, **(detail or {})},
    )


@transaction.atomic
def rule_create(
    *,
    dataset: Dataset,
    by,
    name: str,
    query,
    action: dict,
    trigger: str = Trigger.AFTER_SCORING,
    schedule_minutes: int | None = None,
    ordering: str = "",
    max_per_run: int = 1000,
) -> Rule:
    """A new rule, disabled: dry-run it, then enable it."""
    clean = _clean_definition(
        dataset,
        {
            "name": name,
            "query": query,
            "ordering": ordering,
            "trigger": trigger,
            "schedule_minutes": schedule_minutes,
            "max_per_run": max_per_run,
            "action": action,
        },
    )
    rule = Rule(project=dataset.project, dataset=dataset, created_by=by, **clean)
    _check_schedule(rule)
    rule.save()
    _audit(rule, by, "rule.created", _definition(rule))
    return rule


@transaction.atomic
def rule_update(*, rule: Rule, by, **fields) -> Rule:
    """Change a rule. A changed definition needs a new dry run before it runs again, so the
    rule is disabled; what it already acted on stays acted on."""
    rule = Rule.objects.select_for_update().get(pk=rule.pk)
    clean = _clean_definition(rule.dataset, {**fields, "pk": rule.pk})
    before = {"name": rule.name, **_definition(rule)}
    for key, value in clean.items():
        setattr(rule, key, value)
    _check_schedule(rule)
    after = {"name": rule.name, **_definition(rule)}
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if not changed:
        return rule
    if set(changed) - {"name"}:
        rule.dry_run_at = None
        rule.enabled = False
        if rule.action_type != before["action"].get("type"):
            rule.state = {}
    rule.save()
    _audit(rule, by, "rule.changed", {"changed": changed})
    return rule


@transaction.atomic
def rule_enable(*, rule: Rule, by) -> Rule:
    rule = Rule.objects.select_for_update().get(pk=rule.pk)
    if rule.enabled:
        return rule
    if rule.dry_run_at is None:
        raise ValidationError({"enabled": "Dry-run the rule first, to see what it would act on."})
    rule.enabled = True
    # A scheduled rule first runs at the next beat tick, then on its schedule.
    rule.next_run_at = timezone.now() if rule.trigger == Trigger.SCHEDULE else None
    rule.save(update_fields=["enabled", "next_run_at"])
    _audit(rule, by, "rule.enabled")
    return rule


@transaction.atomic
def rule_disable(*, rule: Rule, by) -> Rule:
    rule = Rule.objects.select_for_update().get(pk=rule.pk)
    if not rule.enabled:
        return rule
    rule.enabled = False
    rule.next_run_at = None
    rule.save(update_fields=["enabled", "next_run_at"])
    _audit(rule, by, "rule.disabled")
    return rule


@transaction.atomic
def rule_delete(*, rule: Rule, by) -> None:
    _audit(rule, by, "rule.deleted", _definition(rule))
    RuleHit.objects.filter(rule=rule).delete()
    rule.delete()


# --- What a run would do ----------------------------------------------------------------------


@dataclass
class Plan:
    matched: int
    new: int
    samples: list[Sample]  # what the run acts on, in order
    detail: dict = field(default_factory=dict)


def _latest_run(dataset: Dataset):
    from apps.quality.selectors import latest_done_run

    return latest_done_run(dataset)


def _fresh_matches(rule: Rule, run):
    """The query's matches, and those the rule has not acted on, in the rule's order."""
    from apps.explorer.query import apply

    name = (rule.ordering or "id").lstrip("-")
    descending = (rule.ordering or "").startswith("-")
    if name != "id" and run is None:
        name, descending = "id", False  # no scores yet: first come first
    extra = () if name == "id" else (name,)
    try:
        matches = apply(
            Sample.objects.filter(dataset=rule.dataset, active=True),
            rule.dataset,
            run,
            rule.query,
            extra_scores=extra,
        )
    except QueryError as exc:
        raise ValidationError({"query": str(exc)}) from None
    fresh = matches.exclude(pk__in=RuleHit.objects.filter(rule=rule).values("sample_id"))
    key = F("pk") if name == "id" else F(f"score_{name}")
    order = key.desc(nulls_last=True) if descending else key.asc(nulls_last=True)
    return matches, fresh.order_by(order, "pk")


def _target_batch(rule: Rule):
    from apps.vendors.models import Batch

    batch_id = rule.state.get("batch")
    if not batch_id:
        return None
    return Batch.objects.filter(pk=batch_id, status=Batch.Status.DRAFT).first()


def _target_session(rule: Rule):
    from apps.review.models import ReviewSession

    session_id = rule.action.get("session") or rule.state.get("session")
    if not session_id:
        return None
    return ReviewSession.objects.filter(pk=session_id, status=ReviewSession.Status.OPEN).first()


def _vendor(rule: Rule):
    from apps.vendors.models import Vendor

    vendor = Vendor.objects.filter(pk=rule.action["vendor"], projects=rule.project_id).first()
    if vendor is None:
        raise ValidationError({"vendor": "The rule's vendor no longer works for this project."})
    return vendor


def _room(rule: Rule, detail: dict) -> int:
    """How many samples the action's target can still take."""
    from apps.review.services import SESSION_MAX_ITEMS
    from apps.vendors.services import BATCH_MAX_ITEMS

    action = rule.action
    room = rule.max_per_run
    if rule.action_type == ActionType.REVIEW:
        session = _target_session(rule)
        if rule.action.get("session") and session is None:
            raise ValidationError({"session": "The rule's review session is closed or gone."})
        held = session.items.count() if session else 0
        room = min(room, SESSION_MAX_ITEMS - held)
        detail["session"] = session.pk if session else None
    if rule.action_type in (ActionType.VENDOR_BATCH, ActionType.ACTIVE_PICK):
        batch = _target_batch(rule)
        held = batch.items.count() if batch else 0
        room = min(room, BATCH_MAX_ITEMS - held)
        detail["batch"] = batch.pk if batch else None
        if rule.action_type == ActionType.ACTIVE_PICK:
            room = min(room, action["count"])
        if "budget" in action:
            vendor = _vendor(rule)
            price = Decimal(action.get("price_per_item") or vendor.price_per_item)
            budget = Decimal(action["budget"])
            affordable = math.floor(budget / price) if price > 0 else BATCH_MAX_ITEMS
            detail["budget"] = {
                "cap": str(budget),
                "price_per_item": str(price),
                "currency": vendor.currency,
                "items_already": held,
            }
            if affordable - held < room:
                detail["budget"]["capped"] = True
            room = min(room, affordable - held)
    return max(0, room)


def _pick(rule: Rule, run, fresh, room: int, detail: dict) -> list[Sample]:
    """The active-learning pick: the most informative unlabelled or production matches,
    uncertain and spread over the embedding space."""
    from apps.datasets.selectors import embedding_space
    from workers.engine.neighbours import active_learning_pick

    pool = fresh.filter(
        Q(split__in=[Split.UNLABELED, Split.PRODUCTION]) | Q(label__isnull=True)
    ).values_list("pk", flat=True)[:PICK_POOL]
    ids = list(pool)
    model_run = (run.model_run if run is not None and run.model_run_id else None) or (
        ModelRun.objects.filter(dataset=rule.dataset).first()
    )
    space = embedding_space(rule.dataset)
    detail["pool"] = len(ids)
    if not ids or model_run is None or space is None:
        detail["skipped"] = "no unlabelled or production matches with probabilities and embeddings"
        return []
    probs = dict(
        Prediction.objects.filter(run=model_run, epoch=0, sample_id__in=ids).values_list(
            "sample_id", "probs"
        )
    )
    vectors = dict(
        Embedding.objects.filter(space=space, sample_id__in=ids).values_list("sample_id", "vector")
    )
    usable = [i for i in ids if i in probs and i in vectors]
    detail["pool_usable"] = len(usable)
    if not usable:
        detail["skipped"] = "no unlabelled or production matches with probabilities and embeddings"
        return []
    order = active_learning_pick(
        np.asarray([probs[i] for i in usable], dtype=np.float32),
        np.asarray([vectors[i] for i in usable], dtype=np.float32),
        budget=min(room, len(usable)),
        uncertainty=rule.action["uncertainty"],
    )
    chosen = [usable[i] for i in order.tolist()]
    by_id = Sample.objects.in_bulk(chosen)
    return [by_id[i] for i in chosen]


def _plan(rule: Rule) -> Plan:
    run = _latest_run(rule.dataset)
    detail: dict = {"scoring_run": run.pk if run else None}
    if run is None and compile_query(rule.dataset, _ANY_RUN, rule.query).scores:
        detail["skipped"] = (
            "the query reads scores, and the dataset has no finished scoring run yet"
        )
        return Plan(matched=0, new=0, samples=[], detail=detail)
    matches, fresh = _fresh_matches(rule, run)
    matched = matches.count()
    new = fresh.count()
    room = _room(rule, detail) if new else 0
    if rule.action_type == ActionType.ACTIVE_PICK and room:
        chosen = _pick(rule, run, fresh, room, detail)
    else:
        chosen = list(fresh[:room])
    return Plan(matched=matched, new=new, samples=chosen, detail=detail)


def _preview(samples: list[Sample]) -> list[dict]:
    return [
        {
            "id": s.pk,
            "external_id": s.external_id,
            "split": s.split,
            "label": s.label,
            "text": (s.text or "")[:200],
        }
        for s in samples[:PREVIEW]
    ]


def rule_dry_run(*, rule: Rule, by=None) -> dict:
    """What the rule would do now, changing nothing (but noting that it was dry-run)."""
    plan = _plan(rule)
    Rule.objects.filter(pk=rule.pk).update(dry_run_at=timezone.now())
    rule.refresh_from_db(fields=["dry_run_at"])
    return {
        "matched": plan.matched,
        "new": plan.new,
        "would_act_on": len(plan.samples),
        "sample_ids": [s.pk for s in plan.samples],
        "preview": _preview(plan.samples),
        "detail": plan.detail,
    }


# --- Running ----------------------------------------------------------------------------------


def samples_url(rule: Rule) -> str:
    return sample_table_url(rule.dataset_id, rule.query)


def _act(rule: Rule, samples: list[Sample], by, detail: dict) -> None:
    """Do the rule's action on the samples (all of them: the plan already applied the caps)."""
    from apps.explorer.services import samples_tag

    action = rule.action
    dataset = rule.dataset
    label = f"rule “{rule.name}”"
    if rule.action_type == ActionType.TAG:
        detail["tagged"] = samples_tag(
            dataset=dataset,
            samples=Sample.objects.filter(pk__in=[s.pk for s in samples]),
            tag=action["tag"],
            by=by,
        )
    elif rule.action_type == ActionType.REVIEW:
        from apps.review.services import session_create, session_items_add

        session = _target_session(rule)
        if session is not None:
            session_items_add(session=session, samples=samples, by=by)
        else:
            from django.contrib.auth import get_user_model

            people = list(get_user_model().objects.filter(username__in=action["participants"]))
            session = session_create(
                dataset=dataset,
                by=by,
                title=action.get("title") or f"{rule.name} ({timezone.now():%Y-%m-%d})",
                query=rule.query,
                ordering=rule.ordering,
                participants=people,
                blind=action.get("blind", False),
                description=f"Samples found by {label}.",
                samples=samples,
            )
            rule.state = {**rule.state, "session": session.pk}
        detail["session"] = session.pk
    elif rule.action_type in (ActionType.VENDOR_BATCH, ActionType.ACTIVE_PICK):
        from apps.vendors.services import batch_create, batch_items_add

        batch = _target_batch(rule)
        if batch is not None:
            batch_items_add(batch=batch, samples=samples, by=by)
        else:
            batch = batch_create(
                dataset=dataset,
                vendor=_vendor(rule),
                by=by,
                title=action.get("title") or f"{rule.name} ({timezone.now():%Y-%m-%d})",
                instructions=action.get("instructions", ""),
                query=rule.query,
                samples=samples,
                price_per_item=action.get("price_per_item"),
            )
            rule.state = {**rule.state, "batch": batch.pk}
        detail["batch"] = batch.pk
    elif rule.action_type == ActionType.NOTIFY:
        pass  # the rule.fired event carries the notice (see _announce)
    elif rule.action_type == ActionType.WEBHOOK:
        from apps.webhooks.models import Webhook

        webhook = Webhook.objects.filter(pk=action["webhook"], project=rule.project).first()
        if webhook is None:
            raise ValidationError({"webhook": "The rule's webhook is gone."})
        if not webhook.active:
            raise ValidationError({"webhook": f"The webhook to {webhook.url} is switched off."})
        if "rule.fired" in webhook.events:
            detail["delivery"] = "with the rule.fired event it subscribes to"


def _payload(rule: Rule, samples: list[Sample]) -> dict:
    return {
        "rule": {"id": rule.pk, "name": rule.name, "action": rule.action_type},
        "project": {"id": rule.project_id, "slug": rule.project.slug},
        "dataset": {"id": rule.dataset_id, "name": rule.dataset.name},
        "count": len(samples),
        "samples": [{"id": s.pk, "external_id": s.external_id} for s in samples[:1000]],
        "url": samples_url(rule),
    }


def _author_may_run(rule: Rule) -> None:
    membership = (
        Membership.objects.filter(project=rule.project_id, user_id=rule.created_by_id).first()
        if rule.created_by_id is not None
        else None
    )
    if not may_set_action(membership, rule.action_type):
        who = rule.created_by.username if rule.created_by else "Its author"
        raise ValidationError(
            {
                "rule": f"{who} can no longer run this rule's action in the project; someone who can should re-create it."
            }
        )


def rule_run(
    *, rule_id: int, why: str = RuleRun.Why.MANUAL, scoring_run_id: int | None = None
) -> RuleRun | None:
    """Run the rule once; None when it is gone, disabled (unless run by hand) or already ran
    for this scoring run. A failure is recorded as a failed run and changes nothing else."""
    started = timezone.now()
    try:
        with transaction.atomic():
            rule = (
                Rule.objects.select_for_update(of=("self",))
                .select_related("project", "dataset", "created_by")
                .filter(pk=rule_id)
                .first()
            )
            if rule is None or (not rule.enabled and why != RuleRun.Why.MANUAL):
                return None
            if scoring_run_id and rule.runs.filter(scoring_run_id=scoring_run_id).exists():
                return None
            _author_may_run(rule)
            plan = _plan(rule)
            record = RuleRun.objects.create(
                rule=rule,
                why=why,
                scoring_run_id=scoring_run_id,
                status=RuleRun.Status.DONE,
                matched=plan.matched,
                new=plan.new,
                acted_on=len(plan.samples),
                detail=plan.detail,
                started_at=started,
            )
            if plan.samples:
                _act(rule, plan.samples, rule.created_by, plan.detail)
                RuleHit.objects.bulk_create(
                    RuleHit(rule=rule, sample=s, run=record) for s in plan.samples
                )
                _announce(rule, plan.samples, plan.detail)
                record.detail = plan.detail
                record.save(update_fields=["detail"])
            rule.last_run_at = timezone.now()
            rule.save(update_fields=["last_run_at", "state"])
            return record
    except ValidationError as exc:
        return _failed(rule_id, why, scoring_run_id, started, error_text(exc))
    except Exception as exc:
        _failed(rule_id, why, scoring_run_id, started, f"{exc.__class__.__name__}: {exc}")
        raise


def _failed(rule_id, why, scoring_run_id, started, message: str) -> RuleRun | None:
    log.warning("rule %s failed: %s", rule_id, message)
    if not Rule.objects.filter(pk=rule_id).exists():
        return None
    return RuleRun.objects.create(
        rule_id=rule_id,
        why=why,
        scoring_run_id=scoring_run_id,
        status=RuleRun.Status.FAILED,
        error=message,
        started_at=started,
    )


def _announce(rule: Rule, samples: list[Sample], detail: dict) -> None:
    """The rule.fired event: an activity line and the webhooks subscribed to it; a notify
    action adds its notice, and a webhook action its webhook (one delivery there, subscribed
    or not). How many people were notified and the webhook's delivery go into `detail`."""
    action = rule.action
    notice = webhook = None
    if rule.action_type == ActionType.NOTIFY:
        people = tuple(
            m.user
            for m in Membership.objects.filter(
                project=rule.project, role__in=action["roles"]
            ).select_related("user")
        )
        notice = events.Notice(
            users=people,
            kind="rule",
            text=action.get("message")
            or f"Rule “{rule.name}” found {len(samples)} new samples in {rule.dataset.name}",
            url=samples_url(rule),
        )
    elif rule.action_type == ActionType.WEBHOOK:
        webhook = action["webhook"]
    receipt = events.record(
        events.Event(
            "rule.fired",
            project=rule.project,
            actor=rule.created_by,
            payload=_payload(rule, samples),
            activity=f"rule “{rule.name}” acted on {len(samples)} samples of {rule.dataset.name}",
            url=reverse("rules:detail", args=[rule.pk]),
            notice=notice,
            webhook=webhook,
        )
    )
    if notice is not None:
        detail["notified"] = receipt["notified"]
    if "delivery" in receipt:
        detail["delivery"] = receipt["delivery"]


def rules_after_scoring_enqueue(*, scoring_run_id: int) -> None:
    """After a scoring run finishes: queue its dataset's after-scoring rules (after commit)."""
    try:
        task_enqueue("loupe.rules.after_scoring", scoring_run_id)
    except Exception:  # the scoring run is done either way
        log.exception("could not queue the rules after scoring run %s", scoring_run_id)


def rules_after_scoring(*, scoring_run_id: int) -> list[RuleRun]:
    from apps.quality.models import RunStatus, ScoringRun

    run = ScoringRun.objects.filter(pk=scoring_run_id, status=RunStatus.DONE).first()
    if run is None:
        return []
    rules = Rule.objects.filter(
        dataset_id=run.dataset_id, enabled=True, trigger=Trigger.AFTER_SCORING
    ).values_list("pk", flat=True)
    done = []
    for rule_id in rules:
        record = rule_run(rule_id=rule_id, why=RuleRun.Why.SCORING, scoring_run_id=run.pk)
        if record is not None:
            done.append(record)
    return done


def rules_run_due(*, now=None) -> list[int]:
    """Claim the scheduled rules that are due (moving each one's next run on) and queue them."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Rule.objects.select_for_update(skip_locked=True).filter(
                enabled=True, trigger=Trigger.SCHEDULE, next_run_at__lte=now
            )
        )
        for rule in due:
            rule.next_run_at = now + timedelta(minutes=rule.schedule_minutes or 1440)
            rule.save(update_fields=["next_run_at"])
        ids = [rule.pk for rule in due]
        for pk in ids:
            task_enqueue("loupe.rules.run", pk, RuleRun.Why.SCHEDULE)
    return ids


def rule_run_enqueue(*, rule: Rule) -> None:
    task_enqueue("loupe.rules.run", rule.pk, RuleRun.Why.MANUAL)
