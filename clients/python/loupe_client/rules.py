"""Rules as code: `Loupe(...).rules` lists, creates, dry-runs, switches and runs rules."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, cast

from loupe_client.base import Ref, ref_id
from loupe_client.http import Http
from loupe_client.types import DryRun, Rule, RuleRun


class Rules:
    """A rule is a saved query, a trigger and an action; it acts once per sample.

    >>> rule = lp.rules.create(dataset=12, name="suspect cats",
    ...     query={"field": "mislabel_score", "op": ">=", "value": 0.9},
    ...     action={"type": "tag", "tag": "suspect"})
    >>> lp.rules.dry_run(rule)["would_act_on"]
    37
    >>> lp.rules.enable(rule)

    Actions: {"type": "tag", "tag": ...}; {"type": "review", "session": id} or
    {"type": "review", "participants": [usernames], "title": ..., "blind": False};
    {"type": "vendor_batch", "vendor": id, "budget": "250", "price_per_item": ...};
    {"type": "active_pick", "vendor": id, "count": 100, "budget": ...};
    {"type": "notify", "roles": ["owner", "manager"], "message": ...};
    {"type": "webhook", "webhook": id}.
    """

    def __init__(self, http: Http):
        self._http = http

    def list(self, dataset: Ref) -> builtins.list[Rule]:
        """The dataset's rules."""
        return list(self._http.pages(f"datasets/{ref_id(dataset)}/rules/"))

    def get(self, rule: Ref) -> Rule:
        return cast(Rule, self._http.json("GET", f"rules/{ref_id(rule)}/"))

    def create(
        self,
        *,
        dataset: Ref,
        query: Mapping[str, Any] | None,
        action: Mapping[str, Any],
        name: str,
        trigger: str = "after_scoring",
        schedule_minutes: int | None = None,
        ordering: str = "",
        max_per_run: int = 1000,
    ) -> Rule:
        """A new rule, switched off: dry-run it, then enable it. `trigger` is "after_scoring"
        or "schedule" (with `schedule_minutes` 60, 360, 1440 or 10080)."""
        body: dict[str, Any] = {
            "name": name,
            "query": dict(query or {}),
            "action": dict(action),
            "trigger": trigger,
            "ordering": ordering,
            "max_per_run": max_per_run,
        }
        if schedule_minutes is not None:
            body["schedule_minutes"] = schedule_minutes
        return cast(
            Rule,
            self._http.json(
                "POST",
                f"datasets/{ref_id(dataset)}/rules/",
                ok=(201,),
                json_body=body,
                idempotent=False,
            ),
        )

    def update(self, rule: Ref, **fields: Any) -> Rule:
        """Change a rule (name, query, action, trigger, ...); a change to what it does switches
        it off until it is dry-run again."""
        return cast(Rule, self._http.json("PATCH", f"rules/{ref_id(rule)}/", json_body=fields))

    def dry_run(self, rule: Ref) -> DryRun:
        """What the rule would do now: matched, new, would_act_on, sample_ids, preview."""
        return cast(DryRun, self._http.json("POST", f"rules/{ref_id(rule)}/dry-run/"))

    def enable(self, rule: Ref) -> Rule:
        return cast(Rule, self._http.json("POST", f"rules/{ref_id(rule)}/enable/"))

    def disable(self, rule: Ref) -> Rule:
        return cast(Rule, self._http.json("POST", f"rules/{ref_id(rule)}/disable/"))

    def run(self, rule: Ref) -> Rule:
        """Queue a run now (it shows in `runs` when done)."""
        return cast(
            Rule,
            self._http.json("POST", f"rules/{ref_id(rule)}/run/", ok=(202,), idempotent=False),
        )

    def runs(self, rule: Ref) -> builtins.list[RuleRun]:
        """The rule's run log, newest first."""
        return list(self._http.pages(f"rules/{ref_id(rule)}/runs/"))

    def delete(self, rule: Ref) -> None:
        with self._http.request("DELETE", f"rules/{ref_id(rule)}/", ok=(204,)):
            pass
