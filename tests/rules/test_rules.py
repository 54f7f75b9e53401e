"""Rules: a dry run shows what a run does, a run acts once per sample, each action does its job
within its caps, schedules and scoring trigger runs, and a failing run changes nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.datasets.models import ModelRun, Prediction, Sample, SampleTag, Split
from apps.projects.capabilities import Role
from apps.review.models import Notification, ReviewSession, SessionItem
from apps.rules import services
from apps.rules.models import Rule, RuleHit, RuleRun, Trigger
from apps.vendors import services as vendor_services
from apps.vendors.models import Batch, BatchItem

CATS = {"field": "label", "op": "=", "value": "cat"}


def cats(dataset) -> set[int]:
    return set(Sample.objects.filter(dataset=dataset, label="cat").values_list("pk", flat=True))


def make_rule(dataset, user, *, action, query=CATS, enable=True, **extra) -> Rule:
    rule = services.rule_create(
        dataset=dataset,
        by=user,
        name=extra.pop("name", "cats"),
        query=query,
        action=action,
        **extra,
    )
    if enable:
        services.rule_dry_run(rule=rule, by=user)
        rule = services.rule_enable(rule=rule, by=user)
    return rule


def run(rule: Rule) -> RuleRun:
    record = services.rule_run(rule_id=rule.pk, why=RuleRun.Why.SCHEDULE)
    assert record is not None
    assert record.status == RuleRun.Status.DONE, record.error
    return record


def tagged(dataset, tag: str) -> set[int]:
    return set(
        SampleTag.objects.filter(tag__dataset=dataset, tag__name=tag).values_list(
            "sample_id", flat=True
        )
    )


def test_the_dry_run_matches_the_real_run_and_changes_nothing(world, team):
    dataset, _run, _rows = world
    owner = team.user("owner")
    rule = make_rule(dataset, owner, action={"type": "tag", "tag": "suspect"}, enable=False)
    dry = services.rule_dry_run(rule=rule, by=owner)
    assert dry["matched"] == dry["new"] == dry["would_act_on"] == len(cats(dataset))
    assert set(dry["sample_ids"]) == cats(dataset)
    assert [p["id"] for p in dry["preview"]] == dry["sample_ids"][:10]
    assert tagged(dataset, "suspect") == set() and not RuleHit.objects.exists()
    assert not RuleRun.objects.exists()

    services.rule_enable(rule=rule, by=owner)
    record = run(rule)
    assert record.acted_on == dry["would_act_on"] and record.matched == dry["matched"]
    assert tagged(dataset, "suspect") == set(dry["sample_ids"])


def test_a_rule_acts_once_per_sample(world, team):
    dataset, _run, _rows = world
    owner = team.user("owner")
    rule = make_rule(dataset, owner, action={"type": "tag", "tag": "suspect"})
    first = run(rule)
    assert first.acted_on == len(cats(dataset)) > 0
    again = run(rule)
    assert (again.matched, again.new, again.acted_on) == (first.matched, 0, 0)
    # A new match is acted on, alone.
    newcomer = Sample.objects.create(dataset=dataset, external_id="new-cat", label="cat")
    third = run(rule)
    assert third.acted_on == 1
    assert set(
        RuleHit.objects.filter(rule=rule, run=third).values_list("sample_id", flat=True)
    ) == {newcomer.pk}
    assert RuleHit.objects.filter(rule=rule).count() == len(cats(dataset))
    # The dry run now sees nothing left to do.
    assert services.rule_dry_run(rule=rule)["would_act_on"] == 0


def test_max_per_run_and_ordering_decide_what_a_run_takes(world, team):
    dataset, scoring, _rows = world
    owner = team.user("owner")
    rule = make_rule(
        dataset,
        owner,
        action={"type": "tag", "tag": "worst"},
        query={"field": "mislabel_score", "op": ">=", "value": 0},
        ordering="-mislabel_score",
        max_per_run=5,
    )
    record = run(rule)
    assert record.acted_on == 5 and record.new > 5
    top = (
        scoring.samplescore_set.all()
        if hasattr(scoring, "samplescore_set")
        else __import__("apps.quality.models", fromlist=["SampleScore"]).SampleScore.objects.filter(
            run=scoring
        )
    )
    best = [
        s.sample_id
        for s in top.exclude(mislabel_score=None).order_by("-mislabel_score", "sample_id")[:5]
    ]
    assert tagged(dataset, "worst") == set(best)


def test_review_action_fills_a_new_session_then_keeps_adding_to_it(world, team):
    dataset, _run, _rows = world
    owner, reviewer = team.user("owner"), team.user("reviewer")
    action = {"type": "review", "participants": ["reviewer1"], "title": "Suspect cats"}
    rule = make_rule(dataset, owner, action=action)
    record = run(rule)
    session = ReviewSession.objects.get(pk=record.detail["session"])
    assert session.title == "Suspect cats"
    assert set(session.items.values_list("sample_id", flat=True)) == cats(dataset)
    assert session.participants.filter(pk=reviewer.pk).exists()
    assert Notification.objects.filter(user=reviewer, kind="session").exists()

    newcomer = Sample.objects.create(dataset=dataset, external_id="late-cat", label="cat")
    second = run(rule)
    assert second.detail["session"] == session.pk and second.acted_on == 1
    items = list(session.items.order_by("position").values_list("sample_id", flat=True))
    assert items[-1] == newcomer.pk and len(items) == len(set(items))

    # Once the session is closed, the next matches start a new one.
    ReviewSession.objects.filter(pk=session.pk).update(status=ReviewSession.Status.CLOSED)
    Sample.objects.create(dataset=dataset, external_id="later-cat", label="cat")
    third = run(rule)
    assert third.detail["session"] != session.pk
    assert SessionItem.objects.filter(session_id=third.detail["session"]).count() == 1


def test_review_action_into_an_existing_session_never_adds_a_sample_twice(world, team):
    dataset, _run, _rows = world
    owner = team.user("owner")
    from apps.review.services import session_create

    first_cats = sorted(cats(dataset))[:3]
    session = session_create(
        dataset=dataset,
        by=owner,
        title="Mixed",
        participants=[team.user("reviewer")],
        samples=list(Sample.objects.filter(pk__in=first_cats).order_by("pk")),
    )
    rule = make_rule(dataset, owner, action={"type": "review", "session": session.pk})
    record = run(rule)
    ids = list(session.items.values_list("sample_id", flat=True))
    assert sorted(ids) == sorted(cats(dataset)) and len(ids) == len(set(ids))
    # The run acted on every match; three were in the session already and stayed put.
    assert record.acted_on == len(cats(dataset))


def test_vendor_batch_action_keeps_within_its_budget(world, team, vendor):
    dataset, _run, _rows = world
    manager = team.user("manager")
    # 0.05 EUR an item, 0.25 EUR budget: five items a draft batch.
    action = {"type": "vendor_batch", "vendor": vendor.pk, "budget": "0.25", "title": "Cats"}
    rule = make_rule(dataset, manager, action=action)
    record = run(rule)
    batch = Batch.objects.get(pk=record.detail["batch"])
    assert batch.status == Batch.Status.DRAFT and batch.items.count() == 5
    assert batch.price_per_item * batch.items.count() <= Decimal("0.25")
    assert record.detail["budget"]["capped"] is True
    # The budget of this draft is spent: nothing more goes in.
    assert run(rule).acted_on == 0 and batch.items.count() == 5
    # Once it is sent, the next run drafts a new batch with the next five.
    vendor_services.batch_send(batch=batch, by=manager)
    record = run(rule)
    second = Batch.objects.get(pk=record.detail["batch"])
    assert second.pk != batch.pk and second.items.count() == 5
    both = set(
        BatchItem.objects.filter(batch__in=[batch, second]).values_list("sample_id", flat=True)
    )
    assert len(both) == 10 and both <= cats(dataset)


def test_active_pick_takes_uncertain_unlabelled_samples_into_a_batch(world, team, vendor):
    dataset, _run, _rows = world
    manager = team.user("manager")
    unlabelled = list(Sample.objects.filter(dataset=dataset, label=None).order_by("pk"))
    labelled = list(Sample.objects.filter(dataset=dataset).exclude(label=None).order_by("pk"))
    model_run = ModelRun.objects.create(dataset=dataset, name="m", classes=dataset.labels)
    # Three unlabelled samples are as uncertain as can be; the rest are sure of one class.
    for i, sample in enumerate(unlabelled + labelled):
        probs = [1 / 3] * 3 if i < 3 else [0.9, 0.05, 0.05]
        Prediction.objects.create(run=model_run, sample=sample, probs=probs)
    action = {"type": "active_pick", "vendor": vendor.pk, "count": 3, "title": "Next"}
    rule = make_rule(dataset, manager, action=action, query={})
    dry = services.rule_dry_run(rule=rule)
    record = run(rule)
    items = BatchItem.objects.filter(batch_id=record.detail["batch"])
    picked = set(items.values_list("sample_id", flat=True))
    assert picked == set(dry["sample_ids"]) and len(picked) == 3
    assert picked <= {s.pk for s in unlabelled}
    # The most uncertain come first; the others spread over the map rather than all flat ones.
    assert dry["sample_ids"][0] in {s.pk for s in unlabelled[:3]}
    assert record.detail["pool"] == len(unlabelled)


def test_notify_action_tells_the_chosen_roles(world, team):
    dataset, _run, _rows = world
    owner = team.user("owner")
    rule = make_rule(dataset, owner, action={"type": "notify", "roles": ["manager", "reviewer"]})
    run(rule)
    got = set(Notification.objects.filter(kind="rule").values_list("user__username", flat=True))
    assert got == {"manager1", "reviewer1"}
    assert run(rule).acted_on == 0
    assert Notification.objects.filter(kind="rule").count() == 2


def test_bad_definitions_are_refused_naming_the_field(world, team, vendor):
    dataset, _run, _rows = world
    owner = team.user("owner")
    cases = [
        ({"query": {"field": "nope", "op": "=", "value": 1}}, "query"),
        ({"action": {"type": "explode"}}, "action"),
        ({"action": {"type": "tag", "tag": ""}}, "tag"),
        ({"action": {"type": "tag", "tag": "x", "colour": "red"}}, "action"),
        ({"action": {"type": "tag", "tag": ["x"]}}, "tag"),
        ({"action": {"type": "review", "participants": [{"name": "reviewer1"}]}}, "participants"),
        ({"action": {"type": "review", "participants": "reviewer1"}}, "participants"),
        ({"action": {"type": "review", "session": [1]}}, "session"),
        ({"action": {"type": "review", "participants": ["reviewer1"], "title": 7}}, "title"),
        ({"action": {"type": "notify", "roles": "owner"}}, "roles"),
        ({"action": {"type": "notify", "message": {"text": "hi"}}}, "message"),
        ({"action": {"type": "review", "participants": ["vendor1"]}}, "participants"),
        ({"action": {"type": "vendor_batch", "vendor": vendor.pk}}, "budget"),
        ({"action": {"type": "vendor_batch", "vendor": vendor.pk, "budget": "-3"}}, "budget"),
        ({"action": {"type": "vendor_batch", "vendor": 999999, "budget": "3"}}, "vendor"),
        ({"action": {"type": "active_pick", "vendor": vendor.pk, "count": 0}}, "count"),
        ({"action": {"type": "notify", "roles": ["vendor"]}}, "roles"),
        ({"action": {"type": "webhook", "webhook": 999999}}, "webhook"),
        ({"trigger": "schedule"}, "schedule_minutes"),
        ({"trigger": "schedule", "schedule_minutes": 7}, "schedule_minutes"),
        ({"ordering": "-colour"}, "ordering"),
        ({"max_per_run": 0}, "max_per_run"),
        ({"name": " "}, "name"),
    ]
    for change, field in cases:
        options = {"name": "r", "query": CATS, "action": {"type": "tag", "tag": "t"}, **change}
        with pytest.raises(ValidationError) as caught:
            services.rule_create(dataset=dataset, by=owner, **options)
        assert field in caught.value.message_dict, (change, caught.value.message_dict)
    assert (
        not Rule.objects.exists()
        and not AuditEvent.objects.filter(action__startswith="rule").exists()
    )


def test_a_rule_is_enabled_only_after_a_dry_run_and_a_change_asks_for_another(world, team):
    dataset, _run, _rows = world
    owner = team.user("owner")
    rule = make_rule(dataset, owner, action={"type": "tag", "tag": "t"}, enable=False)
    with pytest.raises(ValidationError, match="Dry-run"):
        services.rule_enable(rule=rule, by=owner)
    services.rule_dry_run(rule=rule, by=owner)
    rule = services.rule_enable(rule=rule, by=owner)
    assert rule.enabled
    rule = services.rule_update(
        rule=rule, by=owner, query={"field": "label", "op": "=", "value": "dog"}
    )
    assert not rule.enabled and rule.dry_run_at is None
    # A new name alone keeps it running.
    services.rule_dry_run(rule=rule, by=owner)
    rule = services.rule_enable(rule=rule, by=owner)
    rule = services.rule_update(rule=rule, by=owner, name="dogs")
    assert rule.enabled and rule.name == "dogs"
    actions = list(
        AuditEvent.objects.filter(action__startswith="rule.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "rule.created", "rule.enabled", "rule.changed", "rule.enabled", "rule.changed",
    ]  # fmt: skip
    change = AuditEvent.objects.filter(action="rule.changed").order_by("id").first()
    assert change.detail["changed"]["query"]["to"]["value"] == "dog" and change.actor == owner
    services.rule_delete(rule=rule, by=owner)
    assert AuditEvent.objects.filter(action="rule.deleted", target__contains="dogs").exists()


def test_a_disabled_rule_does_not_run_unless_by_hand(world, team):
    dataset, _run, _rows = world
    owner = team.user("owner")
    rule = make_rule(dataset, owner, action={"type": "tag", "tag": "t"}, enable=False)
    assert services.rule_run(rule_id=rule.pk, why=RuleRun.Why.SCHEDULE) is None
    assert services.rule_run(rule_id=rule.pk, why=RuleRun.Why.MANUAL).acted_on > 0


def test_a_run_whose_author_lost_the_right_fails_and_changes_nothing(world, team, vendor):
    dataset, _run, _rows = world
    manager = team.user("manager")
    action = {"type": "vendor_batch", "vendor": vendor.pk, "budget": "1"}
    rule = make_rule(dataset, manager, action=action)
    team.members["manager"].role = Role.SCIENTIST
    team.members["manager"].save()
    record = services.rule_run(rule_id=rule.pk, why=RuleRun.Why.SCHEDULE)
    assert record.status == RuleRun.Status.FAILED and "can no longer" in record.error
    assert not Batch.objects.exists() and not RuleHit.objects.exists()


def test_a_run_that_fails_midway_leaves_no_half_done_action(world, team, monkeypatch):
    dataset, _run, _rows = world
    owner = team.user("owner")
    rule = make_rule(dataset, owner, action={"type": "tag", "tag": "t"})

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "_announce", broken)
    with pytest.raises(RuntimeError):
        services.rule_run(rule_id=rule.pk, why=RuleRun.Why.SCHEDULE)
    assert tagged(dataset, "t") == set() and not RuleHit.objects.exists()
    assert RuleRun.objects.get().status == RuleRun.Status.FAILED


def test_scheduled_rules_are_claimed_when_due_and_moved_on(world, team, monkeypatch):
    dataset, _run, _rows = world
    owner = team.user("owner")
    sent = []
    monkeypatch.setattr(services, "task_enqueue", lambda name, *a, **o: sent.append(a))
    due = make_rule(
        dataset, owner, action={"type": "tag", "tag": "t"}, trigger=Trigger.SCHEDULE,
        schedule_minutes=60, name="hourly",
    )  # fmt: skip
    later = make_rule(
        dataset, owner, action={"type": "tag", "tag": "u"}, trigger=Trigger.SCHEDULE,
        schedule_minutes=1440, name="daily",
    )  # fmt: skip
    Rule.objects.filter(pk=later.pk).update(next_run_at=timezone.now() + timedelta(hours=3))
    make_rule(dataset, owner, action={"type": "tag", "tag": "v"}, name="after scoring")
    now = timezone.now()
    with __import__("django.test", fromlist=["TestCase"]).TestCase.captureOnCommitCallbacks(
        execute=True
    ):
        assert services.rules_run_due(now=now) == [due.pk]
    assert sent == [(due.pk, "schedule")]
    due.refresh_from_db()
    assert due.next_run_at == now + timedelta(minutes=60)
    assert services.rules_run_due(now=now + timedelta(minutes=30)) == []


def test_after_scoring_runs_each_enabled_rule_once_per_scoring_run(world, team):
    dataset, scoring, _rows = world
    owner = team.user("owner")
    rule = make_rule(dataset, owner, action={"type": "tag", "tag": "t"})
    make_rule(dataset, owner, action={"type": "tag", "tag": "u"}, name="off", enable=False)
    first = services.rules_after_scoring(scoring_run_id=scoring.pk)
    assert [r.rule_id for r in first] == [rule.pk] and first[0].scoring_run_id == scoring.pk
    # The same scoring run again (a redelivered message) runs nothing.
    assert services.rules_after_scoring(scoring_run_id=scoring.pk) == []
    assert RuleRun.objects.count() == 1
    assert tagged(dataset, "u") == set()


def test_production_and_unlabelled_pool_only(world, team, vendor):
    """The active-learning pick never takes a labelled training sample."""
    dataset, _run, _rows = world
    manager = team.user("manager")
    Sample.objects.filter(dataset=dataset, label=None).update(label="cat")
    model_run = ModelRun.objects.create(dataset=dataset, name="m", classes=dataset.labels)
    for sample in Sample.objects.filter(dataset=dataset):
        Prediction.objects.create(run=model_run, sample=sample, probs=[1 / 3] * 3)
    action = {"type": "active_pick", "vendor": vendor.pk, "count": 3}
    rule = make_rule(dataset, manager, action=action, query={})
    record = run(rule)
    assert record.acted_on == 0 and "no unlabelled" in record.detail["skipped"]
    sample = Sample.objects.filter(dataset=dataset).first()
    Sample.objects.filter(pk=sample.pk).update(split=Split.PRODUCTION)
    assert run(rule).acted_on == 1


def test_webhook_action_sends_one_rule_fired_event_per_run(world, team):
    from apps.webhooks.models import WebhookDelivery
    from apps.webhooks.services import webhook_create, webhook_update

    dataset, _run, _rows = world
    owner = team.user("owner")
    hook = webhook_create(
        project=team.project,
        by=owner,
        url="https://hooks.example.com/loupe",
        events=["session.closed"],
    )
    rule = make_rule(dataset, owner, action={"type": "webhook", "webhook": hook.pk})
    record = run(rule)
    (delivery,) = WebhookDelivery.objects.filter(webhook=hook)
    assert delivery.event == "rule.fired" and record.detail["delivery"] == delivery.pk
    assert delivery.payload["count"] == record.acted_on == len(cats(dataset))
    assert {s["id"] for s in delivery.payload["samples"]} == cats(dataset)
    assert delivery.payload["rule"] == {"id": rule.pk, "name": "cats", "action": "webhook"}
    # Subscribed to rule.fired as well, it still gets one delivery of a run, not two.
    webhook_update(webhook=hook, by=owner, events=["rule.fired"])
    Sample.objects.create(dataset=dataset, external_id="one-more", label="cat")
    run(rule)
    assert WebhookDelivery.objects.filter(webhook=hook).count() == 2
    # A switched-off webhook fails the run, and the samples wait for the next one.
    webhook_update(webhook=hook, by=owner, active=False)
    Sample.objects.create(dataset=dataset, external_id="and-another", label="cat")
    failed = services.rule_run(rule_id=rule.pk, why=RuleRun.Why.SCHEDULE)
    assert failed.status == RuleRun.Status.FAILED and "switched off" in failed.error
    webhook_update(webhook=hook, by=owner, active=True)
    assert run(rule).acted_on == 1


def test_a_rules_email_links_to_the_site(
    world, team, settings, mailoutbox, django_capture_on_commit_callbacks
):
    """Background work has no request to take the address from: LOUPE_SITE_URL gives it."""
    settings.LOUPE_SITE_URL = "https://loupe.example.com/"
    dataset, _run, _rows = world
    owner = team.user("owner")
    rule = make_rule(dataset, owner, action={"type": "notify", "roles": ["manager"]})
    with django_capture_on_commit_callbacks(execute=True):
        run(rule)
    (mail,) = mailoutbox
    assert mail.subject.startswith("[Loupe] Rule “cats” found")
    assert f"https://loupe.example.com/datasets/{dataset.pk}/samples/?q=" in mail.body


def test_deleting_a_dataset_deletes_its_rules_and_what_they_acted_on(world, team):
    from apps.datasets.services import dataset_delete

    dataset, _run, _rows = world
    owner = team.user("owner")
    rule = make_rule(dataset, owner, action={"type": "tag", "tag": "t"})
    assert run(rule).acted_on > 0
    dataset_delete(dataset=dataset, by=owner)
    assert not Rule.objects.exists() and not RuleRun.objects.exists()
    assert not RuleHit.objects.exists()


def test_a_vendor_gone_from_the_project_fails_the_run_with_the_reason(world, team, vendor):
    dataset, _run, _rows = world
    manager = team.user("manager")
    action = {"type": "vendor_batch", "vendor": vendor.pk, "budget": "1"}
    rule = make_rule(dataset, manager, action=action)
    vendor.projects.remove(team.project)
    with pytest.raises(ValidationError, match="no longer works"):
        services.rule_dry_run(rule=rule)
    record = services.rule_run(rule_id=rule.pk, why=RuleRun.Why.SCHEDULE)
    assert record.status == RuleRun.Status.FAILED and "no longer works" in record.error
    assert not Batch.objects.exists() and not RuleHit.objects.exists()
