"""Choosing the sample table's columns: what may be named, and what a bad list is told."""

from __future__ import annotations

import pytest

from apps.explorer.columns import DEFAULT_COLUMNS, MAX_COLUMNS, columns_of, is_score
from apps.explorer.query import QueryError


def test_names_as_text_or_a_list_each_once_in_order():
    assert columns_of(None) == list(DEFAULT_COLUMNS) == columns_of("") == columns_of([])
    assert columns_of("label, mislabel_score,metadata.region,label") == [
        "label",
        "mislabel_score",
        "metadata.region",
    ]
    assert columns_of(["tags", "similarity"]) == ["tags", "similarity"]
    assert is_score("mislabel_score") and not is_score("label") and not is_score("metadata.x")


@pytest.mark.parametrize(
    "raw,message",
    [
        ("label,password", "unknown column 'password'"),
        ("label,,split", "empty name"),
        ("metadata.", "metadata key"),
        ({"a": 1}, "list of column names"),
        ([1, 2], "list of column names"),
        (",".join(f"metadata.k{i}" for i in range(MAX_COLUMNS + 1)), f"at most {MAX_COLUMNS}"),
    ],
)
def test_a_bad_list_names_what_is_wrong(raw, message):
    with pytest.raises(QueryError) as error:
        columns_of(raw)
    assert error.value.path == "columns" and message in str(error.value)
