"""Single-label classification: a vote keeps, removes, is unsure, or relabels to one class; the
consensus is the one choice (a relabel counts with its class) that enough votes agree on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from apps.annotations.base import Policy, VoteChoice, VoteView


def tally(votes: Iterable[VoteView]) -> dict[str, int]:
    """{"keep": n, "remove": n, "relabel:cat": n, "unsure": n} of a sample's votes."""
    return dict(
        Counter(
            f"{VoteChoice.RELABEL}:{v.label}" if v.choice == VoteChoice.RELABEL else v.choice
            for v in votes
        )
    )


def consensus(counts: dict[str, int], policy: Policy) -> tuple[str, str | None] | None:
    """The winning (outcome, label), if the votes meet the policy: enough votes that are not
    "unsure", and the top choice holding the share of them the policy asks."""
    decided = {k: n for k, n in counts.items() if k != VoteChoice.UNSURE}
    total = sum(decided.values())
    if total < policy.min_votes or not decided:
        return None
    top, n = max(decided.items(), key=lambda kv: (kv[1], kv[0]))
    tied = [k for k, m in decided.items() if m == n]
    if len(tied) > 1 or n / total < policy.agreement:
        return None
    if top.startswith(f"{VoteChoice.RELABEL}:"):
        return VoteChoice.RELABEL, top.split(":", 1)[1]
    return top, None
