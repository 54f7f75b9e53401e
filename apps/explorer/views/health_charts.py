"""The health page's charts, drawn on the server as SVG like the drift page's and the reports':
score distributions with the flagged samples among them, the classes' flagged share and model
accuracy, and the estimated label noise of each split across versions. Every bar opens the table
on exactly its samples."""

from __future__ import annotations

from typing import Any

from apps.core.charts import line_path, scale
from apps.core.links import sample_table_url

WIDTH, HEIGHT = 640, 170
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 10, 28
SCORE_TITLES = {
    "mislabel_score": "Mislabel score",
    "error_potential": "Error potential",
    "outlier_strength": "Outlier strength (robust z of the strongest signal)",
}


def _range_query(column: str, low: float, high: float) -> dict:
    return {
        "all": [
            {"field": column, "op": ">=", "value": low},
            {"field": column, "op": "<=", "value": high},
        ]
    }


def distribution(
    dataset_id: int, name: str, hist: dict, *, column: str, threshold: float | None = None
) -> dict[str, Any] | None:
    """Bars of a histogram from the run's summary (see quality's `histogram`): the flagged
    part of each bar drawn apart, the flag threshold as a line when there is one, and each bar a
    link to the samples whose `column` lies in the bin's stored range."""
    if not hist or not any(hist.get("counts", [])):
        return None
    edges, counts = hist["edges"], hist["counts"]
    flagged = hist.get("flagged") or [0] * len(counts)
    x = scale(edges[0], edges[-1], LEFT, WIDTH - RIGHT)
    y = scale(0, max(counts), HEIGHT - BOTTOM, TOP)
    bars = []
    for i, n in enumerate(counts):
        if not n:
            continue
        low, high = hist["ranges"][i]
        left, right = x(edges[i]) + 0.5, x(edges[i + 1]) - 0.5
        bars.append(
            {
                "x": round(left, 1),
                "w": round(max(right - left, 1.0), 1),
                "y": round(y(n), 1),
                "h": round(y(0) - y(n), 1),
                "fy": round(y(flagged[i]), 1),
                "fh": round(y(0) - y(flagged[i]), 1),
                "flagged": flagged[i],
                "count": n,
                "label": f"{edges[i]:.2f}–{edges[i + 1]:.2f}",
                "url": sample_table_url(dataset_id, _range_query(column, low, high), f"-{column}"),
            }
        )
    ticks = [
        {"x": round(x(edges[i]), 1), "text": f"{edges[i]:.2g}"}
        for i in range(0, len(edges), max(1, (len(edges) - 1) // 4))
    ]
    line = None
    if threshold is not None and edges[0] <= threshold <= edges[-1]:
        line = {"x": round(x(threshold), 1), "text": f"flagged from {threshold:.2f}"}
    return {
        "name": name,
        "title": SCORE_TITLES.get(name, name),
        "width": WIDTH,
        "height": HEIGHT,
        "bars": bars,
        "ticks": ticks,
        "max": max(counts),
        "top": TOP,
        "base": HEIGHT - BOTTOM,
        "left": LEFT,
        "threshold": line,
        "has_flagged": any(flagged),
    }


def per_class(dataset_id: int, rows: list[dict], confusion: list[list[int]] | None) -> list[dict]:
    """Per class: its labelled samples, the share flagged likely mislabelled and the model's
    accuracy on it (the confusion matrix's diagonal over its row), as percentages for bars, each
    a link to the class's flagged samples or to all of it."""
    out = []
    for i, row in enumerate(rows):
        labelled = row["labelled"]
        accuracy = None
        if confusion and i < len(confusion) and sum(confusion[i]):
            accuracy = round(100 * confusion[i][i] / sum(confusion[i]), 1)
        label = {"field": "label", "op": "=", "value": row["class"]}
        out.append(
            {
                "class": row["class"],
                "labelled": labelled,
                "flagged": row["flagged"],
                "flagged_pct": round(100 * row["flagged"] / labelled, 1) if labelled else 0.0,
                "accuracy_pct": accuracy,
                "flagged_url": sample_table_url(
                    dataset_id,
                    {"all": [label, {"field": "likely_mislabeled", "op": "=", "value": True}]},
                    "-mislabel_score",
                ),
                "class_url": sample_table_url(dataset_id, label, "-mislabel_score"),
            }
        )
    return out


def noise_across_versions(dataset_id: int, runs: list[tuple[int, dict]]) -> dict | None:
    """The estimated label-noise rate of each split, one point per scored version (its newest
    finished run), as lines; None with fewer than two versions."""
    points: dict[str, list[tuple[int, float]]] = {}
    for version, noise in runs:
        for split, row in noise.items():
            if row.get("rate") is not None:
                points.setdefault(split, []).append((version, 100 * row["rate"]))
    versions = sorted({v for v, _ in runs})
    if len(versions) < 2 or not points:
        return None
    top = max(rate for series in points.values() for _, rate in series) or 1.0
    x = scale(versions[0], versions[-1], LEFT, WIDTH - RIGHT)
    y = scale(0, top, HEIGHT - BOTTOM, TOP)
    series = [
        {
            "split": split,
            "d": line_path((x(v), y(r)) for v, r in pts),
            "points": [
                {
                    "x": round(x(v), 1),
                    "y": round(y(r), 1),
                    "text": f"version {v}: {r:.1f}%",
                }
                for v, r in pts
            ],
            "url": sample_table_url(
                dataset_id,
                {
                    "all": [
                        {"field": "split", "op": "=", "value": split},
                        {"field": "likely_mislabeled", "op": "=", "value": True},
                    ]
                },
                "-mislabel_score",
            ),
        }
        for split, pts in sorted(points.items())
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "series": series,
        "ticks": [{"x": round(x(v), 1), "text": f"v{v}"} for v in versions],
        "top": TOP,
        "base": HEIGHT - BOTTOM,
        "left": LEFT,
        "max": round(top, 1),
    }
