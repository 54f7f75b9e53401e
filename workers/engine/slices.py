"""Weak slices: metadata values whose samples are wrong more often than the rest, with a test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# SciPy is imported by the functions that use it, so that importing this module stays cheap.

MISSING = "(missing)"
# Numeric columns with more distinct values than this are cut into quantile bins: one slice per
# exact value would make every slice tiny and the multiple-testing correction hopeless.
_MAX_DISTINCT_NUMERIC = 10
_NUMERIC_BINS = 4


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _slice_values(values: Sequence[Any]) -> list[str]:
    """One label per row: the value itself, or a quantile bin for many-valued numeric columns."""
    present = [v for v in values if not _is_missing(v)]
    numeric = bool(present) and all(
        isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in present
    )
    if not numeric or len(set(present)) <= _MAX_DISTINCT_NUMERIC:
        return [MISSING if _is_missing(v) else str(v) for v in values]
    edges = np.unique(
        np.quantile(np.asarray(present, dtype=np.float64), np.linspace(0, 1, _NUMERIC_BINS + 1))
    )
    labels = []
    for v in values:
        if _is_missing(v):
            labels.append(MISSING)
            continue
        # Interior edges only, so the lowest and highest values land in the end bins.
        b = int(np.searchsorted(edges[1:-1], float(v), side="right"))
        low, high = edges[b], edges[b + 1]
        closing = "]" if b == len(edges) - 2 else ")"
        labels.append(f"[{low:g}, {high:g}{closing}")
    return labels


def weak_slices(
    metadata_columns: dict[str, Sequence[Any]],
    is_error: np.ndarray | Sequence[bool],
    *,
    min_size: int = 20,
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """Every (column, value) slice of at least `min_size` rows, worst evidence first.

    Each slice's error rate is tested against the rest of the dataset with a one-sided Fisher
    exact test (is the slice worse?), and the p-values of all slices tested are adjusted with
    Benjamini-Hochberg: dozens of columns x values would otherwise "find" weak slices by chance.
    `significant` is q < alpha.
    """
    errors = np.asarray(is_error, dtype=bool)
    n = errors.size
    rows: list[dict[str, Any]] = []
    for column, values in metadata_columns.items():
        if len(values) != n:
            raise ValueError(f"column {column!r} has {len(values)} values for {n} samples")
        labels = np.asarray(_slice_values(values), dtype=object)
        for value in sorted(set(labels.tolist())):
            in_slice = labels == value
            size = int(in_slice.sum())
            if size < min_size or size == n:
                continue  # too small to judge, or the whole dataset: no "rest" to compare with
            rows.append({"column": column, "value": value, **worse_than_rest(errors, in_slice)})
    with_q_values(rows, alpha=alpha)
    return sorted(rows, key=lambda r: (r["q_value"], -r["difference"], r["column"], r["value"]))


def worse_than_rest(errors: np.ndarray, members: np.ndarray) -> dict[str, Any]:
    """A group's error count and rate against the rest's, with the p-value of a one-sided Fisher
    exact test on the 2 x 2 table (error or not x in the group or not): is the group worse?"""
    from scipy import stats

    size, n = int(members.sum()), len(errors)
    group_errors = int(errors[members].sum())
    rest, rest_errors = n - size, int(errors.sum()) - group_errors
    table = [[group_errors, size - group_errors], [rest_errors, rest - rest_errors]]
    rate = group_errors / size if size else 0.0
    rest_rate = rest_errors / rest if rest else 0.0
    return {
        "size": size,
        "errors": group_errors,
        "error_rate": rate,
        "accuracy": 1.0 - rate,
        "rest_error_rate": rest_rate,
        "difference": rate - rest_rate,
        "p_value": float(stats.fisher_exact(table, alternative="greater").pvalue),
    }


def with_q_values(rows: list[dict[str, Any]], *, alpha: float = 0.05) -> None:
    """Benjamini-Hochberg q-values of the rows' p-values, and `significant` (q < alpha), in place."""
    if not rows:
        return
    from scipy import stats

    q_values = stats.false_discovery_control([r["p_value"] for r in rows], method="bh")
    for row, q in zip(rows, q_values, strict=True):
        row["q_value"] = float(q)
        row["significant"] = bool(q < alpha)
