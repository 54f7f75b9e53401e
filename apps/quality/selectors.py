"""Reading scoring results: the run a page shows, the samples a flag points at, and the points
of the embedding map."""

from __future__ import annotations

import math

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    Func,
    IntegerField,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber

from apps.datasets.models import Dataset, Split
from apps.quality.models import RunStatus, ScoringRun


def latest_done_run(dataset: Dataset) -> ScoringRun | None:
    """The newest finished run: what pages, exports and filters show by default."""
    return dataset.scoring_runs.filter(status=RunStatus.DONE).first()


# --- The embedding map ----------------------------------------------------------------------------

MAP_LIMIT = 100_000  # points the map draws at most; above it, a sample stratified by label
# Scores the map can colour by on a continuous scale (`?color=`); x and y are the map itself.
MAP_NUMERIC_SCORES = (
    "mislabel_score",
    "error_potential",
    "margin",
    "outlier_score",
    "knn_agreement",
    "coverage",
)
_MAP_COLUMNS = ("x", "y", "suggested_label", "cluster")


def map_scores(color: str | None = None) -> set[str]:
    """The run's scores `map_points` reads: give them to `samples_matching(extra_scores=...)`."""
    return {*_MAP_COLUMNS, *([color] if color else [])}


def _quotas(counts: dict, limit: int) -> dict:
    """Each label's share of `limit`, proportional to its count, summing to exactly `limit`
    (largest remainder; ties go to the larger class, then the label, so it is deterministic)."""
    total = sum(counts.values())
    exact = {label: n * limit / total for label, n in counts.items()}
    quotas = {label: int(share) for label, share in exact.items()}
    rest = limit - sum(quotas.values())
    by_remainder = sorted(
        counts, key=lambda label: (-(exact[label] - quotas[label]), -counts[label], str(label))
    )
    for label in by_remainder[:rest]:
        quotas[label] += 1
    return quotas


def _stratified(placed: QuerySet, counts: dict, limit: int) -> QuerySet:
    """`limit` of the placed samples, each label keeping its share (`_quotas`). Within a label
    the samples with the lowest hash of their id are kept: spread over the whole dataset (not
    the oldest), and the same every time.

    All in SQL, and without sorting every row: a label's candidates are first cut to the hashes
    below a threshold that lets through a few more than its quota (the hash is uniform, so the
    number let through is binomial; four standard deviations spare), and only those are ranked.
    The result is the same as ranking them all, unless a label falls short of its quota, which
    then keeps every candidate it had.
    """
    quotas = _quotas(counts, limit)

    def by_label(values: dict, field, default: int = 0) -> Case:
        return Case(
            *(
                When(label__isnull=True, then=Value(v))
                if label is None
                else When(label=label, then=Value(v))
                for label, v in values.items()
            ),
            default=Value(default),
            output_field=field,
        )

    span = 2**32  # hashint8 is a 32-bit signed integer, uniform over its range
    thresholds = {}
    for label, quota in quotas.items():
        share = min(1.0, (quota + 4 * math.sqrt(quota) + 20) / counts[label])
        thresholds[label] = min(2**31, math.floor(share * span) - 2**31)
    hashed = placed.annotate(
        map_hash=Func(F("pk"), function="hashint8", output_field=IntegerField())
    ).filter(map_hash__lt=by_label(thresholds, BigIntegerField(), -(2**31)))
    rank = Window(
        RowNumber(), partition_by=[F("label")], order_by=[F("map_hash").asc(), F("pk").asc()]
    )
    return hashed.annotate(map_rank=rank, map_quota=by_label(quotas, IntegerField())).filter(
        map_rank__lte=F("map_quota")
    )


def _decimals(low: float, high: float) -> int:
    """Decimals that keep 10,000 to 100,000 steps across the map: finer is invisible, and costs
    bytes."""
    span = high - low
    return max(0, 4 - math.floor(math.log10(span))) if span > 0 else 4


def map_points(
    dataset: Dataset,
    run: ScoringRun,
    samples: QuerySet,
    *,
    limit: int = MAP_LIMIT,
    color: str | None = None,
    only_color: bool = False,
) -> dict:
    """The points of the run's 2D map, as columns (index i of every list is one sample, by id).

    `samples` comes from `samples_matching(..., extra_scores=map_scores(color))`; samples the run
    did not place (no x/y) are left out. Above `limit` points, a sample stratified by label is
    drawn. Labels, suggested labels and splits are indices into `labels` and `splits` (-1: none);
    `color` adds that score's values (null where missing) as `score`. With `only_color`, only
    `ids` and `score` are sent: the map already holds the rest.
    """
    placed = samples.filter(score_x__isnull=False, score_y__isnull=False)
    counts = {
        row["label"]: row["n"]
        for row in placed.order_by().values("label").annotate(n=Count("pk")).order_by("label")
    }
    total = sum(counts.values())
    sampled = total > limit
    chosen = _stratified(placed, counts, limit) if sampled else placed
    if only_color:
        columns = ["pk", f"score_{color}"]
    else:
        columns = ["pk", "score_x", "score_y", "label", "split", "score_suggested_label"]
        columns += ["score_cluster", *([f"score_{color}"] if color else [])]
    rows = list(chosen.order_by("pk").values_list(*columns))
    data: dict = {"run": run.pk, "count": len(rows), "total": total, "sampled": sampled}
    ids = [row[0] for row in rows]
    if color:
        values = [row[-1] for row in rows]
        known = [v for v in values if v is not None]
        data["color"] = color
        data["score"] = [None if v is None else round(v, 3) for v in values]
        data["score_range"] = [min(known), max(known)] if known else None
    if only_color:
        return {**data, "ids": ids}

    labels = list(dataset.labels)
    splits = list(Split.values)
    label_index = {label: i for i, label in enumerate(labels)}
    split_index = {split: i for i, split in enumerate(splits)}
    xs = [row[1] for row in rows]
    ys = [row[2] for row in rows]
    bounds = {"x": [min(xs), max(xs)], "y": [min(ys), max(ys)]} if rows else None
    dx = _decimals(*bounds["x"]) if bounds else 0
    dy = _decimals(*bounds["y"]) if bounds else 0
    return {
        **data,
        "labels": labels,
        "splits": splits,
        "bounds": bounds,
        "ids": ids,
        "x": [round(x, dx) for x in xs],
        "y": [round(y, dy) for y in ys],
        "label": [label_index.get(row[3], -1) for row in rows],
        "split": [split_index.get(row[4], -1) for row in rows],
        "suggested": [label_index.get(row[5], -1) for row in rows],
        "cluster": [-1 if row[6] is None else row[6] for row in rows],
    }
