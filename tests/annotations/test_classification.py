"""Single-label classification's rules, moved into the task registry, decide exactly as they did
where they were written first (review's tally and consensus, vendors' majority): the functions
below are those, as of the commit before the move, and serve as the reference."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from apps import annotations as task_types
from apps.annotations.base import VoteChoice

kind = task_types.get("classification")
CLASSES = ["bird", "cat", "dog", "relabel:x", "a:b"]


# --- the reference: apps/review/services.py and apps/vendors/selectors.py before the move ---


def reference_tally(votes) -> dict:
    return dict(
        Counter(
            f"{VoteChoice.RELABEL}:{v.label}" if v.choice == VoteChoice.RELABEL else v.choice
            for v in votes
        )
    )


def reference_consensus(counts: dict, policy) -> tuple[str, str | None] | None:
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


def reference_final_label(labels) -> str | None:
    counts = Counter(label.label for label in labels if label.label is not None)
    if not counts:
        return None
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


# --- the same decisions --------------------------------------------------------------------------

votes = st.lists(
    st.one_of(
        st.sampled_from([VoteChoice.KEEP, VoteChoice.REMOVE, VoteChoice.UNSURE]).map(
            lambda choice: SimpleNamespace(choice=str(choice), label=None)
        ),
        st.sampled_from(CLASSES).map(
            lambda label: SimpleNamespace(choice=str(VoteChoice.RELABEL), label=label)
        ),
    ),
    max_size=12,
)
policies = st.builds(
    SimpleNamespace,
    min_votes=st.integers(1, 6),
    agreement=st.sampled_from([0.5, 0.51, 0.6, 0.66, 2 / 3, 0.75, 0.9, 1.0]),
)


@given(votes)
def test_tally_counts_as_before(sample_votes):
    assert kind.review.tally(sample_votes) == reference_tally(sample_votes)


@given(votes, policies)
def test_consensus_decides_as_before(sample_votes, policy):
    counts = reference_tally(sample_votes)
    assert kind.review.consensus(counts, policy) == reference_consensus(counts, policy)


@given(st.lists(st.one_of(st.none(), st.sampled_from(CLASSES)), max_size=8))
def test_the_final_label_is_the_majority_as_before(answers):
    rows = [SimpleNamespace(label=answer) for answer in answers]
    assert kind.agreement.final(answers) == reference_final_label(rows)


def test_examples_read_as_the_review_page_shows_them():
    two_cats = [SimpleNamespace(choice="relabel", label="cat")] * 2
    unsure = [SimpleNamespace(choice="unsure", label=None)]
    policy = SimpleNamespace(min_votes=2, agreement=0.66)
    assert kind.review.tally(two_cats + unsure) == {"relabel:cat": 2, "unsure": 1}
    assert kind.review.consensus({"relabel:cat": 2, "unsure": 1}, policy) == ("relabel", "cat")
    assert kind.review.consensus({"keep": 1, "remove": 1}, policy) is None  # a tie
    assert kind.agreement.final(["dog", "bird"]) is None
    assert kind.agreement.final(["dog", None, "dog", "bird"]) == "dog"


def test_a_label_outside_the_schema_is_refused_with_the_schema_named():
    assert kind.values.check("cat", schema=["cat", "dog"]) is None
    problem = kind.values.check("giraffe", schema=["cat", "dog"])
    assert problem is not None and problem.cls == "giraffe"
    assert problem.message == "Unknown label 'giraffe'; the schema has cat, dog."
    assert kind.values.check(None, schema=["cat", "dog"]).message == "Choose one of cat, dog."
