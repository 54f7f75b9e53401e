"""Dataset health: what the newest finished scoring run found, each number a link to its
samples in the table."""

from __future__ import annotations

import re

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.core.links import sample_table_url
from apps.datasets.access import get_dataset_for_user
from apps.datasets.views import dataset_caps
from apps.explorer import query
from apps.explorer.views import health_charts, stale_context
from apps.quality.models import Flag, RunStatus
from apps.quality.selectors import latest_done_run

# Health tiles, in this order: each flag and the anchor of its method on the methods page.
HEALTH_TILES = {
    "mislabeled": "likely-mislabeled",
    "boundary": "class-overlap",
    "outlier": "outlier",
    "duplicate": "near-duplicates",
    "leaked": "near-duplicates",
    "conflicting": "near-duplicates",
    "redundant": "redundancy",
    "out_of_coverage": "drift",
    "pick": "active-learning",
}


# Splits in the order a data scientist reads them; any other split follows, by name.
HEALTH_SPLIT_ORDER = ["train", "validation", "test", "production", "unlabeled"]

# What a skipped part of a scoring run is called on the health page, and its method's anchor.
HEALTH_SKIPPED = {
    "embeddings": ("Embeddings", "embeddings"),
    "model_run": ("The model run's probabilities", "out-of-sample-probabilities"),
    "training_dynamics": ("Training dynamics", "error-potential"),
    "label_errors": ("Label errors and label noise", "likely-mislabeled"),
    "neighbours": ("Outliers, duplicates and clusters", "outlier"),
    "weak_slices": ("Weak metadata slices", "weak-slices"),
    "active_learning": ("Active-learning selection", "active-learning"),
    "drift": ("Production drift", "drift"),
}


@login_required
def health(request, dataset_id: int):
    """Dataset health: what the newest finished scoring run found, each count a link to its samples."""

    def pct(share):
        """A share (0-1) as a percentage for the page; None stays None."""
        return None if share is None else round(100 * share, 1)

    def split_key(split):
        order = HEALTH_SPLIT_ORDER
        return (order.index(split), "") if split in order else (len(order), split)

    dataset = get_dataset_for_user(request.user, dataset_id)
    run = latest_done_run(dataset)
    summary = run.summary if run else {}
    counts = summary.get("flag_counts", {})
    tiles = [
        {"flag": flag, "label": Flag(flag).label, "anchor": anchor, "count": counts[flag]}
        for flag, anchor in HEALTH_TILES.items()
        if flag in counts
    ]
    classes = summary.get("classes", [])

    # Confusion matrix, given label (rows) x most probable class (columns). Agreement and
    # confusion are shaded on their own scales (0-10): a few confused samples would otherwise
    # vanish next to the hundreds on the diagonal.
    # Newer runs keep given x suggested label, whose cells are exact queries for the table.
    by_suggestion = "suggestion_matrix" in summary
    confusion = summary.get("suggestion_matrix") or summary.get("confusion")
    if confusion:
        size = range(len(confusion))
        most_right = max(confusion[i][i] for i in size) or 1
        most_wrong = max((confusion[i][j] for i in size for j in size if i != j), default=0) or 1
        confusion = [
            {
                "label": label,
                "total": sum(row),
                "agree": pct(row[i] / sum(row)) if sum(row) else None,
                "cells": [
                    {
                        "count": n,
                        "diagonal": i == j,
                        "shade": round(10 * n / (most_right if i == j else most_wrong)),
                        "url": sample_table_url(
                            dataset.pk,
                            query.joined(
                                [
                                    {"field": "label", "op": "=", "value": label},
                                    {"field": "suggested_label", "op": "=", "value": classes[j]},
                                ]
                            ),
                            "-mislabel_score",
                        )
                        if by_suggestion and n
                        else None,
                    }
                    for j, n in enumerate(row)
                ],
            }
            for i, (label, row) in enumerate(zip(classes, confusion, strict=True))
        ]

    # Class balance, one row per class and one column per split. A split's counts are looked up
    # by class name: the stored mapping does not keep the order of `classes`.
    distribution = summary.get("label_distribution", {})
    splits = sorted(distribution, key=split_key)
    labelled = {s: sum(distribution[s].get("counts", {}).values()) for s in splits}
    balance = {
        "splits": splits,
        "rows": [
            {
                "label": c,
                "cells": [
                    {
                        "split": s,
                        "count": (n := distribution[s].get("counts", {}).get(c, 0)),
                        "share": pct(n / labelled[s]) if labelled[s] else None,
                    }
                    for s in splits
                ],
            }
            for c in classes
        ],
        "unlabelled": [{"split": s, "count": distribution[s].get("unlabelled", 0)} for s in splits],
        "imbalance": [distribution[s].get("imbalance") for s in splits],
    }

    noise = [
        {
            "split": split,
            # Runs of older versions kept fewer of these: a missing one shows as a dash.
            "labelled": row.get("labelled"),
            "flagged": row.get("flagged"),
            "rate": pct(row.get("rate")),
            "low": pct(row.get("low")),
            "high": pct(row.get("high")),
        }
        for split, row in sorted(
            summary.get("noise_by_split", {}).items(), key=lambda i: split_key(i[0])
        )
    ]

    cluster_terms = {c["cluster"]: c.get("top_terms", []) for c in summary.get("clusters", [])}
    clusters = [
        {
            **c,
            "error_pct": pct(c["error_rate"]),
            "rest_pct": pct(c.get("rest_error_rate")),
            "accuracy_pct": pct(c.get("accuracy")),
            "majority_pct": pct(c.get("majority_share")),
            "url": sample_table_url(
                dataset.pk,
                {"field": "cluster", "op": "=", "value": c["cluster"]},
                "-mislabel_score",
            ),
        }
        for c in summary.get("clusters", [])[:10]
    ]
    # When no cluster is significantly worse, the list ranks noise: the page says so.
    clusters_significant = any(c.get("significant") for c in summary.get("clusters", []))

    drift = summary.get("drift")
    if drift:
        drift = {
            **drift,
            "share_out_of_coverage_pct": pct(drift.get("share_out_of_coverage")),
            "shift": [
                {
                    "cluster": c["cluster"],
                    "terms": cluster_terms.get(c["cluster"], []),
                    "train": pct(c["train_share"]),
                    "production": pct(c["production_share"]),
                    # Percentage points, signed, with a true minus sign.
                    "change": f"{100 * c['change']:+.1f}".replace("-", "\u2212"),
                    "url": sample_table_url(
                        dataset.pk,
                        query.joined(
                            [
                                {"field": "cluster", "op": "=", "value": c["cluster"]},
                                {"field": "split", "op": "=", "value": "production"},
                            ]
                        ),
                        "coverage",
                    ),
                }
                for c in drift.get("cluster_shift", [])[:6]
            ],
        }

    slices = [
        {
            **s,
            "error_pct": pct(s["error_rate"]),
            "rest_pct": pct(s["rest_error_rate"]),
            "url": (url := _slice_url(dataset, s["column"], s["value"])),
            "errors_url": _slice_url(dataset, s["column"], s["value"], flagged=True)
            if url
            else None,
        }
        for s in summary.get("weak_slices", [])[:10]
    ]

    skipped = [
        {
            "name": HEALTH_SKIPPED.get(key, (key.replace("_", " ").capitalize(), None))[0],
            "anchor": HEALTH_SKIPPED.get(key, (None, None))[1],
            "why": why,
        }
        for key, why in (run.skipped.items() if run and run.skipped else [])
    ]

    outliers = summary.get("outliers") or {}
    distributions = [
        chart
        for chart in (
            health_charts.distribution(
                dataset.pk,
                "mislabel_score",
                summary.get("distributions", {}).get("mislabel_score", {}),
                column="mislabel_score",
            ),
            health_charts.distribution(
                dataset.pk,
                "outlier_strength",
                outliers.get("histogram", {}),
                column="outlier_score",
                threshold=outliers.get("threshold"),
            ),
            health_charts.distribution(
                dataset.pk,
                "error_potential",
                summary.get("distributions", {}).get("error_potential", {}),
                column="error_potential",
            ),
        )
        if chart
    ]
    # Each scored version's newest finished run: only its noise figures are read.
    versions_noise = [
        (version, noise or {})
        for version, noise in dataset.scoring_runs.filter(status=RunStatus.DONE)
        .order_by("version", "-created_at")
        .distinct("version")
        .values_list("version", "summary__noise_by_split")
    ]
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "run": run,
        "distributions": distributions,
        "per_class": health_charts.per_class(
            dataset.pk, summary.get("per_class", []), summary.get("confusion")
        ),
        "noise_chart": health_charts.noise_across_versions(dataset.pk, versions_noise),
        "summary": summary,
        "tiles": tiles,
        "confusion": confusion,
        "classes": classes,
        "balance": balance,
        "noise": noise,
        "clusters": clusters,
        "clusters_significant": clusters_significant,
        "drift": drift,
        "class_pairs": [
            {"classes": p["classes"], "overlap": pct(p["overlap"])}
            for p in summary.get("class_pairs", [])[:5]
        ],
        "slices": slices,
        "outliers": _outlier_summary(summary),
        "skipped": skipped,
        "live": dataset.scoring_runs.filter(
            status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
        ).first(),
        **dataset_caps(request, dataset),
        **stale_context(request, dataset, run),
    }
    return render(request, "explorer/health.html", context)


# What each outlier signal is called on the health page, in the summary's order.
OUTLIER_SIGNALS = {
    "group": "in a group far from every class",
    "class": "far from every class",
    "language": "not in the dataset's language",
    "reference": "unlike the reference split",
    "neighbours": "far from their nearest neighbours",
}


def _outlier_summary(summary: dict) -> dict | None:
    """The outlier threshold the run chose and how many samples each signal flagged."""
    found = summary.get("outliers")
    if not found:
        return None
    return {
        **found,
        "rows": [
            {"signal": key, "name": OUTLIER_SIGNALS.get(key, key), "count": count}
            for key, count in found.get("by_signal", {}).items()
        ],
        "fdr_pct": round(100 * found.get("fdr", 0)),
    }


def _slice_url(dataset, column: str, value, *, flagged: bool = False) -> str | None:
    """The table of a metadata slice: a value, or a quantile bin such as "[0.5, 3)"."""
    field = f"{query.METADATA}{column}"
    if value == "(missing)":
        return None
    found = re.fullmatch(r"\[(\S+), (\S+)([\])])", str(value))
    if found:
        try:
            low, high = float(found[1]), float(found[2])
        except ValueError:
            return None
        parts = [
            {"field": field, "op": ">=", "value": low},
            {"field": field, "op": "<=" if found[3] == "]" else "<", "value": high},
        ]
    else:
        parts = [{"field": field, "op": "=", "value": value}]
    if flagged:
        parts.append({"field": "likely_mislabeled", "op": "=", "value": True})
    return sample_table_url(dataset.pk, query.joined(parts), "-mislabel_score")
