"""Hypothesis strategies for the annotations of every registered task, over one schema."""

from __future__ import annotations

from hypothesis import strategies as st

from apps.annotations.multilabel.values import canonical

SCHEMA = ["bird", "cat", "dog", "[odd]", "ünïcode", "a b"]

# One strategy per registered task: the contract tests fail for a task that has none.
VALUES = {
    "classification": st.sampled_from(SCHEMA),
    "multilabel": st.sets(st.sampled_from(SCHEMA)).map(canonical),
}
