"""Multi-label annotations: one canonical form, a key for the `label` columns, and the ways a
set arrives (a list, a CSV cell `a|b`, a JSON list), each refusing bad input by naming the
class at fault."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.annotations.base import MAX_KEY_LENGTH, MAX_LABEL_LENGTH, Problem
from apps.annotations.multilabel import edits, values
from apps.annotations.multilabel.values import canonical

SCHEMA = ["billing", "refund", "shipping"]

class_names = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
).filter(lambda name: values.check_class_name(name) is None)
label_sets = st.sets(class_names, max_size=8).map(canonical)


@given(label_sets)
def test_canonical_is_sorted_unique_and_idempotent(value):
    assert value["classes"] == sorted(set(value["classes"]))
    assert canonical(value["classes"]) == value
    assert canonical(reversed(value["classes"] * 2)) == value


@given(label_sets)
def test_store_and_load_give_the_value_back_with_its_key(value):
    stored = values.store(value)
    assert stored.annotation == value
    assert stored.label == values.key(value) and len(stored.label) <= MAX_KEY_LENGTH
    assert values.load(stored.label, stored.annotation) == value


def test_unlabelled_is_stored_as_nothing():
    assert values.store(None) == (None, None)
    assert values.load(None, None) is None


@given(label_sets)
def test_a_csv_cell_reads_back_as_written(value):
    assert values.parse_cell(values.csv_cell(value)) == value
    assert values.parse(values.csv_cell(value)) == value


@given(label_sets)
def test_a_list_or_the_api_form_parses_to_the_same_value(value):
    assert values.parse(list(reversed(value["classes"]))) == value
    assert values.parse({"classes": value["classes"]}) == value
    assert values.parse(np.array(value["classes"], dtype=object)) == value


def test_keys_read_as_the_classes_and_the_empty_set_as_its_sign():
    assert values.key(canonical(["refund", "billing"])) == "billing|refund"
    assert values.key(canonical([])) == "∅"
    long = canonical([f"{n:03d}" + "x" * 190 for n in range(5)])
    assert len(values.key(long)) == MAX_KEY_LENGTH and values.key(long).endswith("…")


@pytest.mark.parametrize(
    ("cell", "classes"),
    [
        ("refund|billing", ["billing", "refund"]),
        (" refund | billing ", ["billing", "refund"]),
        ("refund|refund", ["refund"]),
        ('["shipping", "refund"]', ["refund", "shipping"]),
        ("[]", []),
        ("∅", []),
        ("billing", ["billing"]),
    ],
)
def test_a_csv_cell_is_a_delimited_set_or_a_json_list(cell, classes):
    assert values.parse_cell(cell, schema=SCHEMA) == {"classes": classes}


@pytest.mark.parametrize("cell", ["", "   "])
def test_an_empty_cell_is_unlabelled(cell):
    assert values.parse_cell(cell, schema=SCHEMA) is None
    assert values.parse(None) is None


@pytest.mark.parametrize(
    ("raw", "message", "cls"),
    [
        ("billing|giraffe", "unknown class 'giraffe'; the schema has billing, refund", "giraffe"),
        (["refund", "giraffe"], "unknown class 'giraffe'", "giraffe"),
        ("billing||refund", "empty class between '|'", None),
        ("billing|", "empty class", None),
        ('["billing", ["refund"]]', "holds list", None),
        ("[billing", "not a JSON list", None),
        ('{"classes": []}', "unknown class", '{"classes": []}'),  # a cell is no JSON object
        ("[" * 100_000 + "]" * 100_000, "not a JSON list", None),
        ("bill\x00ing", "NUL", None),
        (["bill\x00ing"], "NUL", "bill\x00ing"),
        (["a|b"], "contains '|'", "a|b"),
        (["∅"], "stands for the empty set", "∅"),
        ([""], "empty", ""),
        (["x" * (MAX_LABEL_LENGTH + 1)], "longer than", "x" * (MAX_LABEL_LENGTH + 1)),
        ([1, 2], "holds int 1, not a class name", None),
        ({"classes": ["refund"], "extra": 1}, "nothing else", None),
        (42, "are int", None),
    ],
)
def test_bad_labels_are_refused_naming_the_class(raw, message, cls):
    with pytest.raises(Problem) as refused:
        values.parse(raw, schema=SCHEMA)
    if message:
        assert message in refused.value.message
    assert refused.value.cls == cls


@pytest.mark.parametrize(
    ("name", "ok"),
    [("refund", True), ("[odd]", True), ("a|b", False), ("∅", False), (" pad", False)],
)
def test_class_names_keep_the_separator_and_the_empty_sign_free(name, ok):
    assert (values.check_class_name(name) is None) == ok


def test_check_names_the_first_unknown_class():
    assert values.check(canonical(["refund"]), schema=SCHEMA) is None
    assert values.check(canonical([]), schema=SCHEMA) is None
    problem = values.check(canonical(["refund", "zebra"]), schema=SCHEMA)
    assert problem is not None and problem.cls == "zebra"
    assert values.check(["refund"], schema=SCHEMA) is not None  # not the canonical form


# --- edits ------------------------------------------------------------------------------------


@given(label_sets, label_sets)
def test_applying_the_diff_gives_the_new_set(a, b):
    assert edits.apply(a, edits.diff(a, b)) == b
    assert edits.diff(a, a) == []


@given(label_sets, st.lists(st.tuples(st.sampled_from(["add", "remove"]), class_names)))
def test_applying_edits_twice_changes_nothing_more(a, changes):
    made = [{"op": op, "class": name} for op, name in changes]
    once = edits.apply(a, made)
    assert edits.apply(once, made) == once


def test_edits_read_as_signs_and_classes():
    old, new = canonical(["billing", "shipping"]), canonical(["refund", "shipping"])
    change = edits.diff(old, new)
    assert change == [{"op": "remove", "class": "billing"}, {"op": "add", "class": "refund"}]
    assert edits.describe(change) == ["−billing", "+refund"]
    # Adding a class already there, or removing one that is not, leaves the set as it is.
    assert edits.apply(new, [{"op": "add", "class": "refund"}]) == new
    assert edits.apply(new, [{"op": "remove", "class": "billing"}]) == new


@pytest.mark.parametrize(
    "bad",
    [
        [{"op": "swap", "class": "refund"}],
        [{"op": "add"}],
        [{"op": "add", "class": 3}],
        ["add refund"],
    ],
)
def test_a_malformed_edit_is_refused(bad):
    with pytest.raises(Problem):
        edits.apply(canonical(["refund"]), bad)
