"""Rules as code: `Loupe(...).rules` lists, creates, dry-runs, switches and runs rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loupe_client.client import Loupe


def _rule_id(rule: int | Mapping) -> int:
    return int(rule["id"]) if isinstance(rule, Mapping) else int(rule)


def _dataset_id(dataset: int | Mapping) -> int:
    return int(dataset["id"]) if isinstance(dataset, Mapping) else int(dataset)


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

    def __init__(self, client: Loupe):
        self._client = client

    def list(self, dataset: int | Mapping) -> list[dict]:
        """The dataset's rules."""
        return list(self._client._pages(f"datasets/{_dataset_id(dataset)}/rules/"))

    def get(self, rule: int | Mapping) -> dict:
        return self._client._json("GET", f"rules/{_rule_id(rule)}/")

    def create(
        self,
        *,
        dataset: int | Mapping,
        query: Mapping | None,
        action: Mapping,
        name: str,
        trigger: str = "after_scoring",
        schedule_minutes: int | None = None,
        ordering: str = "",
        max_per_run: int = 1000,
    ) -> dict:
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
        return self._client._json(
            "POST",
            f"datasets/{_dataset_id(dataset)}/rules/",
            ok=(201,),
            json_body=body,
            idempotent=False,
        )

    def update(self, rule: int | Mapping, **fields: Any) -> dict:
        """Change a rule (name, query, action, trigger, ...); a change to what it does switches
        it off until it is dry-run again."""
        return self._client._json("PATCH", f"rules/{_rule_id(rule)}/", json_body=fields)

    def dry_run(self, rule: int | Mapping) -> dict:
        """What the rule would do now: matched, new, would_act_on, sample_ids, preview."""
        return self._client._json("POST", f"rules/{_rule_id(rule)}/dry-run/")

    def enable(self, rule: int | Mapping) -> dict:
        return self._client._json("POST", f"rules/{_rule_id(rule)}/enable/")

    def disable(self, rule: int | Mapping) -> dict:
        return self._client._json("POST", f"rules/{_rule_id(rule)}/disable/")

    def run(self, rule: int | Mapping) -> dict:
        """Queue a run now (it shows in `runs` when done)."""
        return self._client._json(
            "POST", f"rules/{_rule_id(rule)}/run/", ok=(202,), idempotent=False
        )

    def runs(self, rule: int | Mapping) -> list[dict]:
        """The rule's run log, newest first."""
        return list(self._client._pages(f"rules/{_rule_id(rule)}/runs/"))

    def delete(self, rule: int | Mapping) -> None:
        with self._client._request("DELETE", f"rules/{_rule_id(rule)}/", ok=(204,)):
            pass
