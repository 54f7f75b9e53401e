"""A scoring run's results written: its scores in one COPY, its summary on the run."""

from __future__ import annotations

import json

import numpy as np

from apps.datasets.importing.loader import raw_connection
from apps.quality.models import ScoringRun
from apps.quality.pipeline.analysis import Arrays


def write_scores(
    run: ScoringRun,
    data: Arrays,
    scores: dict[str, np.ndarray],
    flags: list[list[str]],
    reasons: list[list[str]],
) -> None:
    """Replace the run's scores in one transaction (an earlier attempt's rows go first)."""
    n = len(data.ids)

    def column(name: str, default=None):
        values = scores.get(name)
        return [default] * n if values is None else values.tolist()

    suggested = scores.get("suggested")
    labels = [data.classes[s] for s in suggested.tolist()] if suggested is not None else [None] * n
    group = [None if g is None or g < 0 else g for g in column("duplicate_group")]
    rows = zip(
        data.ids.tolist(),
        labels,
        column("likely_mislabeled", False),
        column("mislabel_score"),
        column("error_potential"),
        column("margin"),
        column("outlier_score"),
        column("knn_agreement"),
        group,
        column("cluster"),
        column("x"),
        column("y"),
        column("coverage"),
        flags,
        reasons,
        strict=True,
    )
    with raw_connection() as conn, conn.transaction():
        conn.execute("DELETE FROM quality_samplescore WHERE run_id = %s", [run.pk])
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY quality_samplescore (run_id, sample_id, suggested_label, likely_mislabeled, mislabel_score, "
                "error_potential, margin, outlier_score, knn_agreement, duplicate_group, cluster, x, y, "
                "coverage, flags, reasons) "
                "FROM STDIN"
            ) as copy,
        ):
            for (
                sample_id,
                label,
                issue,
                score,
                potential,
                margin,
                outlier,
                agree,
                group,
                cluster,
                x,
                y,
                coverage,
                flagged,
                why,
            ) in rows:
                copy.write_row(
                    (
                        run.pk,
                        sample_id,
                        label,
                        bool(issue),
                        _num(score),
                        _num(potential),
                        _num(margin),
                        _num(outlier),
                        _num(agree),
                        group,
                        cluster,
                        _num(x),
                        _num(y),
                        _num(coverage),
                        flagged,
                        json.dumps(why),
                    )
                )


def _num(value):
    return (
        None
        if value is None or (isinstance(value, float) and not np.isfinite(value))
        else float(value)
    )


def write_summary(
    run: ScoringRun, *, summary: dict, skipped: dict[str, str], timings: dict[str, float]
) -> None:
    """The run's summary, what it skipped and why, and how long each finishing stage took."""
    run.summary, run.skipped = summary, skipped
    run.timings = {**run.timings, **{f"finish: {name}": t for name, t in timings.items()}}
    run.save(update_fields=["summary", "skipped", "timings"])
