"""Single-label classification: several annotators' answers for one item."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def final(answers: Iterable[str | None]) -> str | None:
    """The item's label: the most frequent of its annotators' (skips, None, left out; ties:
    none)."""
    counts = Counter(answer for answer in answers if answer is not None)
    if not counts:
        return None
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]
