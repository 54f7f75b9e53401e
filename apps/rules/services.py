"""Rules: define them, dry-run them, and run them after scoring or on a schedule.

A run is one transaction under a lock on the rule: it reads the query's matches, leaves out
the samples the rule already acted on (RuleHit), acts on the rest up to its caps, and records
the hits with the run. A crash rolls all of it back; a redelivered task finds the hits and
does not act twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from apps.config.exceptions import error_text
from apps.core import events
from apps.core.links import sample_table_url
from apps.core.tasks import task_enqueue
from apps.datasets.models import Dataset, Sample
from apps.explorer import actions
from apps.explorer.actions.checks import positive_int
from apps.explorer.query import ORDERINGS, QueryError, apply, compile_query
from apps.projects.models import Membership
from apps.quality.models import RunStatus, ScoringRun
from apps.quality.selectors import latest_done_run
from apps.rules.access import may_set_action
from apps.rules.models import SCHEDULES, Rule, RuleHit, RuleRun, Trigger

log = logging.getLogger(__name__)

# Stands for "some scoring run" when a query is checked: a rule may name scores before the
# dataset's first run.
_ANY_RUN = ScoringRun(version=0)
MAX_PER_RUN = 50_000
PREVIEW = 10


# --- Defining rules ---------------------------------------------------------------------------


def _clean_action(dataset: Dataset, action) -> dict:
    """The action's settings, checked against the project: what a run will need exists."""
    if not isinstance(action, dict):
        raise ValidationError({"action": "The action must be an object with a type."})
    kind = action.get("type")
    kinds = [a.name for a in actions.for_rules()]
    if kind not in kinds:
        raise ValidationError(
            {"action": f"Unknown action type {kind!r}; use one of {', '.join(kinds)}."}
        )
    handler = actions.get(kind)
    known = set(handler.takes)
    unknown = sorted(set(action) - known - {"type"})
    if unknown:
        raise ValidationError(
            {
                "action": f"A {kind} action has no setting {unknown[0]!r}; it takes {', '.join(sorted(known))}."
            }
        )
    return {"type": kind, **handler.clean(dataset, action)}


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
        elif positive_int(minutes, "schedule_minutes", high=10**6) not in allowed:
            raise ValidationError(
                {"schedule_minutes": f"Run every {', '.join(map(str, allowed))} minutes."}
            )
        else:
            clean["schedule_minutes"] = int(minutes)
    if "max_per_run" in fields:
        clean["max_per_run"] = positive_int(fields["max_per_run"], "max_per_run", high=MAX_PER_RUN)
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
    events.record(
        events.Event(
            action,
            project=rule.project,
            actor=by,
            audit=events.Audit(
                target=f"rule “{rule.name}” on {rule.dataset.name}",
                detail={"rule": rule.pk, **(detail or {})},
            ),
        )
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
    return latest_done_run(dataset)


def _fresh_matches(rule: Rule, run):
    """The query's matches, and those the rule has not acted on, in the rule's order."""
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


def _room(rule: Rule, detail: dict) -> int:
    """How many samples the run may act on: the rule's cap, narrowed by the action's target."""
    room = actions.get(rule.action_type).room(
        rule.dataset, rule.action, room=rule.max_per_run, state=rule.state, detail=detail
    )
    return max(0, room)


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
    chosen = (
        actions.get(rule.action_type).choose(
            rule.dataset, fresh, rule.action, run=run, room=room, detail=detail
        )
        if room
        else []
    )
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
    selection = actions.Selection(
        dataset=rule.dataset, query=rule.query, ordering=rule.ordering, samples=samples
    )
    # What the action makes (a session, a batch) is named after the rule unless it says.
    settings = {
        **rule.action,
        "title": rule.action.get("title") or f"{rule.name} ({timezone.now():%Y-%m-%d})",
        "description": f"Samples found by rule “{rule.name}”.",
    }
    state = dict(rule.state)
    actions.get(rule.action_type).perform(selection, settings, by=by, detail=detail, state=state)
    if state != rule.state:
        rule.state = state


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
    """The rule.fired event: an activity line and the webhooks subscribed to it, and what the
    action adds (a notify action its notice, a webhook action its webhook: one delivery there,
    subscribed or not). How many people were notified and the webhook's delivery go into
    `detail`."""
    extra = actions.get(rule.action_type).announce(
        rule.dataset,
        rule.action,
        text=f"Rule “{rule.name}” found {len(samples)} new samples in {rule.dataset.name}",
        url=samples_url(rule),
    )
    receipt = events.record(
        events.Event(
            "rule.fired",
            project=rule.project,
            actor=rule.created_by,
            payload=_payload(rule, samples),
            activity=ngettext(
                "rule “%(rule)s” acted on %(n)s sample of %(dataset)s",
                "rule “%(rule)s” acted on %(n)s samples of %(dataset)s",
                len(samples),
            )
            % {"rule": rule.name, "n": len(samples), "dataset": rule.dataset.name},
            url=reverse("rules:detail", args=[rule.pk]),
            **extra,
        )
    )
    if "notice" in extra:
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
