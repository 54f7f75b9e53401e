"""Hypothesis strategies for the annotations of every registered task, over one schema."""

from __future__ import annotations

from hypothesis import strategies as st

SCHEMA = ["bird", "cat", "dog", "[odd]", "ünïcode", "a b"]

# One strategy per registered task: the contract tests fail for a task that has none.
VALUES = {
    "classification": st.sampled_from(SCHEMA),
}
