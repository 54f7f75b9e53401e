"""Rules benchmark: a rule's dry run and runs on the explorer benchmark's database (1,000,000
samples × 384-d, 10 % production, a scoring run with 5 % flagged mislabelled).

    python tests/benchmarks/bench_rules.py --work /tmp/bench-explorer

Three rules, each dry-run and run twice in a row (the second run acts on the next matches, as
the first ones are done): tag the 1,000 flagged samples with the highest mislabel score; draft
a relabel batch of flagged production samples within a budget; and the active-learning pick of
100 production samples (probabilities and embeddings read for a pool of up to 20,000). Prints
one JSON object: seconds per dry run and run, matched, acted on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_explorer import setup, work_folder  # noqa: E402

FLAGGED = {"field": "flags", "op": "contains", "value": "mislabeled"}
PRODUCTION = {"field": "split", "op": "=", "value": "production"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True, help="The explorer benchmark's work folder.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    state = setup(work_folder(args.work), args.rows)

    from apps.accounts.models import User
    from apps.datasets.models import Dataset, ModelRun
    from apps.projects.capabilities import Role
    from apps.projects.models import Membership
    from apps.rules import services
    from apps.rules.models import Rule, RuleRun
    from apps.vendors import services as vendor_services

    dataset = Dataset.objects.get(pk=state["dataset"])
    user = User.objects.get(username="bench")
    Membership.objects.update_or_create(
        project=dataset.project, user=user, defaults={"role": Role.OWNER}
    )
    vendor = dataset.project.vendors.first() or vendor_services.vendor_create(
        project=dataset.project, name="Bench Labels", price_per_item="0.04", currency="USD"
    )
    Rule.objects.filter(dataset=dataset).delete()  # a re-run starts afresh
    assert ModelRun.objects.filter(dataset=dataset).exists(), "the file's probabilities"
    rules = {
        "tag the top 1,000 flagged": {
            "query": FLAGGED,
            "ordering": "-mislabel_score",
            "action": {"type": "tag", "tag": "bench-suspect"},
        },
        "flagged production into a batch, 100 USD": {
            "query": {"all": [FLAGGED, PRODUCTION]},
            "ordering": "-mislabel_score",
            "action": {"type": "vendor_batch", "vendor": vendor.pk, "budget": "100"},
        },
        "active-learning pick of 100": {
            "query": PRODUCTION,
            "action": {"type": "active_pick", "vendor": vendor.pk, "count": 100},
        },
    }
    out: dict = {"rows": args.rows}
    for name, fields in rules.items():
        rule = services.rule_create(dataset=dataset, by=user, name=name, **fields)
        started = time.monotonic()
        dry = services.rule_dry_run(rule=rule, by=user)
        dry_seconds = time.monotonic() - started
        runs = []
        for _ in range(2):
            started = time.monotonic()
            record = services.rule_run(rule_id=rule.pk, why=RuleRun.Why.MANUAL)
            assert record.status == RuleRun.Status.DONE, record.error
            runs.append(
                {
                    "seconds": round(time.monotonic() - started, 2),
                    "matched": record.matched,
                    "acted_on": record.acted_on,
                }
            )
        assert runs[0]["acted_on"] == dry["would_act_on"]
        out[name] = {
            "dry_run_seconds": round(dry_seconds, 2),
            "would_act_on": dry["would_act_on"],
            "runs": runs,
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
