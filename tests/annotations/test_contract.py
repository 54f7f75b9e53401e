"""What every registered task type promises, whatever its annotations are: the registry finds
it, each concern either works or refuses with Unsupported, values of the schema pass the checks
and values outside it are refused naming the class, and edits take one annotation to another."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps import annotations as task_types
from apps.annotations.base import AREAS, MAX_LABEL_LENGTH, Problem, Task, Unsupported
from tests.annotations.strategies import SCHEMA, VALUES

TASKS = list(task_types.REGISTRY)
CONCERNS = {
    "values": "check",
    "edits": "diff",
    "review": "tally",
    "agreement": "final",
}


def with_edits() -> list[str]:
    found = []
    for task in TASKS:
        try:
            task_types.get(task).edits.diff  # noqa: B018 (the lookup is the test)
        except Unsupported:
            continue
        found.append(task)
    return found


@pytest.mark.parametrize("task", TASKS)
def test_the_registry_finds_each_task_by_name_and_by_dataset(task):
    kind = task_types.get(task)
    assert kind.task == task and kind.label == Task(task).label
    assert task_types.of(SimpleNamespace(task=task)) is kind
    assert task in VALUES, f"tests/annotations/strategies.py has no values for {task}"


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("concern", CONCERNS)
def test_each_concern_works_or_says_it_is_unsupported(task, concern):
    kind = task_types.get(task)
    try:
        function = getattr(getattr(kind, concern), CONCERNS[concern])
    except Unsupported as refusal:
        assert Task(task).label in str(refusal) and concern in str(refusal)
    else:
        assert callable(function)


def test_only_tasks_every_area_serves_can_be_created():
    assert task_types.creatable() == [Task.CLASSIFICATION]
    for task in TASKS:
        assert (task in task_types.creatable()) == (task_types.get(task).supports >= set(AREAS))


@pytest.mark.parametrize("task", ["detection", "ner", "regression", ""])
def test_an_unknown_or_unbuilt_task_is_refused_clearly(task):
    with pytest.raises(Unsupported, match="not supported yet|Unknown task"):
        task_types.get(task)


@pytest.mark.parametrize("task", TASKS)
@settings(max_examples=50)
@given(data=st.data())
def test_values_of_the_schema_pass_the_check(task, data):
    kind = task_types.get(task)
    value = data.draw(VALUES[task])
    assert kind.values.check(value, schema=SCHEMA) is None


@pytest.mark.parametrize("task", TASKS)
@settings(max_examples=50)
@given(data=st.data())
def test_a_value_outside_the_schema_is_refused_naming_the_class(task, data):
    """A value drawn for a wider schema, with a class this one lacks."""
    kind = task_types.get(task)
    value = data.draw(VALUES[task].filter(lambda v: "cat" in str(v)))
    problem = kind.values.check(value, schema=[c for c in SCHEMA if c != "cat"])
    assert isinstance(problem, Problem)
    assert problem.cls == "cat" and "'cat'" in problem.message


@pytest.mark.parametrize("task", TASKS)
def test_class_names_are_bounded_and_storable(task):
    check = task_types.get(task).values.check_class_name
    assert all(check(name) is None for name in SCHEMA)
    assert check("x" * MAX_LABEL_LENGTH) is None
    assert "longer than" in (check("x" * (MAX_LABEL_LENGTH + 1)) or "")
    assert "NUL" in (check("a\x00b") or "")
    assert "surrogate" in (check("a\ud800") or "")


@pytest.mark.parametrize("task", with_edits())
@settings(max_examples=100)
@given(data=st.data())
def test_edits_take_one_annotation_to_the_other(task, data):
    kind = task_types.get(task)
    a, b = data.draw(VALUES[task]), data.draw(VALUES[task])
    assert kind.edits.diff(a, a) == []
    edits = kind.edits.diff(a, b)
    assert kind.edits.apply(a, edits) == b
    assert kind.edits.apply(b, kind.edits.diff(b, a)) == a
    assert len(kind.edits.describe(edits)) == len(edits)
    assert (edits == []) == (a == b)
