"""Rule jobs: ids in, one service call."""

from celery import shared_task

from apps.rules import services


@shared_task(name="loupe.rules.run", acks_late=True, time_limit=1800, soft_time_limit=1740)
def run_rule(rule_id: int, why: str = "manual") -> None:
    services.rule_run(rule_id=rule_id, why=why)


@shared_task(
    name="loupe.rules.after_scoring", acks_late=True, time_limit=3600, soft_time_limit=3540
)
def run_after_scoring(scoring_run_id: int) -> None:
    services.rules_after_scoring(scoring_run_id=scoring_run_id)


@shared_task(name="loupe.rules.run_due")
def run_due() -> None:
    services.rules_run_due()
