"""A rule fires after a scoring run on a real Celery worker, and acts once per sample across
runs and redelivered messages."""

from __future__ import annotations

import pytest

from apps.datasets.models import SampleTag
from apps.quality.models import RunStatus, SampleScore, ScoringRun
from apps.quality.services import scoring_run_start
from apps.rules import services
from apps.rules.models import RuleHit, RuleRun
from tests.datasets.conftest import import_into
from tests.quality.test_scoring_runs import blobs
from tests.quality.test_scoring_workers import describe, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FLAGGED = {"field": "flags", "op": "contains", "value": "mislabeled"}


def test_a_rule_fires_after_scoring_and_acts_once_per_sample(team, tmp_path, celery_worker_process):
    dataset = import_into(team, blobs(tmp_path, n=120, flips=(3, 40, 77)))
    owner = team.user("owner")
    rule = services.rule_create(
        dataset=dataset, by=owner, name="flagged", query=FLAGGED,
        action={"type": "tag", "tag": "suspect"},
    )  # fmt: skip
    services.rule_dry_run(rule=rule, by=owner)
    services.rule_enable(rule=rule, by=owner)

    def scored() -> ScoringRun:
        run = scoring_run_start(dataset=dataset, by=owner)
        wait_for(
            lambda: ScoringRun.objects.get(pk=run.pk).status in ("done", "failed"),
            describe=lambda: describe(run),
        )
        run.refresh_from_db()
        assert run.status == RunStatus.DONE, run.error
        wait_for(lambda: RuleRun.objects.filter(rule=rule, scoring_run=run).exists(), timeout=60)
        return run

    first = scored()
    flagged = set(
        SampleScore.objects.filter(run=first, flags__contains=["mislabeled"]).values_list(
            "sample_id", flat=True
        )
    )
    assert {3, 40, 77} <= {
        int(e[1:])
        for e in dataset.samples.filter(pk__in=flagged).values_list("external_id", flat=True)
    }
    record = RuleRun.objects.get(rule=rule, scoring_run=first)
    assert record.status == "done" and record.acted_on == len(flagged) == record.matched
    tagged = set(SampleTag.objects.filter(tag__name="suspect").values_list("sample_id", flat=True))
    assert (
        tagged
        == flagged
        == set(RuleHit.objects.filter(rule=rule).values_list("sample_id", flat=True))
    )

    # The same message again changes nothing; a second scoring run finds the same samples
    # and acts on none of them again.
    assert services.rules_after_scoring(scoring_run_id=first.pk) == []
    second = scored()
    again = RuleRun.objects.get(rule=rule, scoring_run=second)
    assert again.matched == len(flagged) and again.acted_on == 0
    assert RuleHit.objects.filter(rule=rule).count() == len(flagged)


def test_a_scheduled_rule_runs_on_a_worker_when_due(world, team, celery_worker_process):
    """What beat does every minute: claim the due rules and queue them; a worker runs them."""
    from datetime import timedelta

    from django.utils import timezone

    dataset, _run, _rows = world
    owner = team.user("owner")
    rule = services.rule_create(
        dataset=dataset, by=owner, name="nightly cats",
        query={"field": "label", "op": "=", "value": "cat"},
        action={"type": "tag", "tag": "nightly"}, trigger="schedule", schedule_minutes=1440,
    )  # fmt: skip
    services.rule_dry_run(rule=rule, by=owner)
    services.rule_enable(rule=rule, by=owner)
    assert services.rules_run_due() == [rule.pk]
    record = wait_for(lambda: RuleRun.objects.filter(rule=rule).first(), timeout=60)
    assert record.why == "schedule" and record.status == "done"
    cats = set(dataset.samples.filter(label="cat").values_list("pk", flat=True))
    assert record.acted_on == len(cats)
    tagged = SampleTag.objects.filter(tag__name="nightly").values_list("sample_id", flat=True)
    assert set(tagged) == cats
    rule.refresh_from_db()
    assert rule.next_run_at > timezone.now() + timedelta(hours=23)
    assert services.rules_run_due() == []  # not due again until tomorrow
