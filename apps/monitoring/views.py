"""The drift page of a dataset: drift over time as a server-drawn SVG chart, the checked windows,
the cluster shift of one window, the project's thresholds and a "Check now" button."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from apps.config.forms import add_service_error
from apps.core.charts import line_path, scale
from apps.core.links import sample_table_url
from apps.datasets.access import get_dataset_for_user
from apps.monitoring import selectors
from apps.monitoring.forms import MonitoringPolicyForm
from apps.monitoring.models import DriftCheck, MonitoringPolicy
from apps.monitoring.services import drift
from apps.monitoring.services.production import PRODUCTION_MAX_ROWS, resolve_space
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.quality.selectors import latest_done_run
from workers.engine import label_shift, monitor

SHOWN_WINDOWS = drift.LOOKBACK_WINDOWS
CHART_W = 720
PANEL_H = 112
PANEL_GAP = 30
LEFT, RIGHT, TOP = 64, 18, 22
P_FLOOR = 1e-16  # smaller p-values are drawn at the top of the chart
_DAY = timedelta(days=1)


def method_parameters() -> dict:
    """The drift check's defaults for the methods page (its "monitor" section), read from the
    code."""
    return {
        **{
            f.name: f.default
            for f in MonitoringPolicy._meta.get_fields()
            if f.name
            in (
                "window_hours",
                "p_value_threshold",
                "coverage_threshold",
                "cluster_shift_threshold",
                "label_shift_threshold",
                "new_kind_threshold",
                "min_samples",
            )
        },
        "lookback": drift.LOOKBACK_WINDOWS,
        "max_train": drift.MAX_TRAIN,
        "max_window": drift.MAX_WINDOW,
        "max_clusters": monitor.MAX_CLUSTERS,
        "top_clusters": drift.TOP_CLUSTERS,
        "new_kind_nominal": label_shift.NEW_KIND_NOMINAL,
        "storey_lambda": label_shift.STOREY_LAMBDA,
        "folds": label_shift.FOLDS,
    }


def _table_url(dataset, parts: list[dict], ordering: str = "") -> str:
    return sample_table_url(dataset.pk, parts[0] if len(parts) == 1 else {"all": parts}, ordering)


def _window_parts(check: DriftCheck) -> list[dict]:
    return [
        {"field": "split", "op": "=", "value": "production"},
        {"field": "observed_at", "op": ">=", "value": check.window_start.isoformat()},
        {"field": "observed_at", "op": "<", "value": check.window_end.isoformat()},
    ]


def _p_text(p: float | None) -> str:
    if p is None:
        return "—"
    return "< 1e-16" if p < P_FLOOR else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def _pct(share: float | None, unit: str) -> str:
    return "—" if share is None else f"{100 * share:.1f}{unit}"


def _panel(
    title: str,
    top: float,
    xs: list[float],
    values: list[float | None],
    *,
    threshold: float,
    y_max: float,
    ticks: list[tuple[float, str]],
    threshold_label: str,
    titles: list[str],
    alerts: list[bool],
) -> dict:
    """One panel of the chart: value axis from 0 (bottom) to y_max (top)."""

    to_y = scale(0, y_max, top + PANEL_H, top)

    def py(v: float) -> float:
        return to_y(min(v, y_max))

    points = [
        {"x": x, "y": py(v), "alert": a, "title": t}
        for x, v, a, t in zip(xs, values, alerts, titles, strict=True)
        if v is not None
    ]
    path = line_path((p["x"], p["y"]) for p in points)
    return {
        "title": title,
        "top": top,
        "bottom": top + PANEL_H,
        "points": points,
        "path": path,
        "threshold_y": py(threshold),
        "threshold_label": threshold_label,
        "ticks": [{"y": py(v), "label": label} for v, label in ticks if v <= y_max],
    }


def drift_chart(checks: list[DriftCheck], policy) -> dict | None:
    """Drift over time, one point per window (oldest left): the test's p-value on a log scale,
    the share out of coverage and the largest cluster share change, with the thresholds."""
    checks = sorted(checks, key=lambda c: c.window_start)
    if not checks:
        return None
    width = CHART_W - LEFT - RIGHT
    t0, t1 = checks[0].window_start, checks[-1].window_start
    span = (t1 - t0).total_seconds()
    to_x = scale(0, span, LEFT + 12, LEFT + width - 12)

    def px(moment: datetime) -> float:
        if not span:
            return LEFT + width / 2
        return to_x((moment - t0).total_seconds())

    xs = [px(c.window_start) for c in checks]
    alerts = [c.alert for c in checks]
    labels = [drift.window_label(c) for c in checks]
    tested = [not c.skipped for c in checks]

    neg_log = [
        -math.log10(max(c.p_value, P_FLOOR)) if ok and c.p_value is not None else None
        for c, ok in zip(checks, tested, strict=True)
    ]
    p_line = -math.log10(policy.p_value_threshold)
    top_p = max([p_line + 2, *[v for v in neg_log if v is not None]])
    top_p = min(16, 2 * math.ceil(top_p / 2))
    step = 2 if top_p <= 8 else 4
    p_ticks = [(e, "1" if e == 0 else f"1e-{e}") for e in range(0, int(top_p) + 1, step)]
    share = [c.share_out_of_coverage if ok else None for c, ok in zip(checks, tested, strict=True)]
    shift = [c.max_cluster_shift if ok else None for c, ok in zip(checks, tested, strict=True)]

    def share_top(values: list[float | None], threshold: float) -> float:
        highest = max([threshold * 1.6, *[v for v in values if v is not None]])
        return min(1.0, math.ceil(highest * 10 + 0.5) / 10)

    def pct_ticks(top_value: float) -> list[tuple[float, str]]:
        step = 0.1 if top_value <= 0.5 else 0.25
        return [(i * step, f"{round(100 * i * step)}%") for i in range(int(top_value / step) + 1)]

    cov_top, shift_top = (
        share_top(share, policy.coverage_threshold),
        share_top(shift, policy.cluster_shift_threshold),
    )
    panels = []
    specs = [
        (
            "Two-sample test p-value (log scale)",
            neg_log,
            p_line,
            top_p,
            p_ticks,
            f"p = {policy.p_value_threshold:g}",
            [
                f"{lb}: p = {_p_text(c.p_value)}, AUC {c.auc:.3f}" if c.auc is not None else lb
                for lb, c in zip(labels, checks, strict=True)
            ],
        ),
        (
            "Out of training coverage",
            share,
            policy.coverage_threshold,
            cov_top,
            pct_ticks(cov_top),
            f"{policy.coverage_threshold:.0%}",
            [
                f"{lb}: {v:.1%} out of coverage" if v is not None else lb
                for lb, v in zip(labels, share, strict=True)
            ],
        ),
        (
            "Largest cluster share change",
            shift,
            policy.cluster_shift_threshold,
            shift_top,
            pct_ticks(shift_top),
            f"{policy.cluster_shift_threshold:.0%}",
            [
                f"{lb}: {100 * v:.1f} points" if v is not None else lb
                for lb, v in zip(labels, shift, strict=True)
            ],
        ),
    ]
    top = TOP
    for title, values, threshold, y_max, ticks, threshold_label, titles in specs:
        panels.append(
            _panel(
                title,
                top,
                xs,
                values,
                threshold=threshold,
                y_max=y_max,
                ticks=ticks,
                threshold_label=threshold_label,
                titles=titles,
                alerts=alerts,
            )
        )
        top += PANEL_H + PANEL_GAP
    bottom = top - PANEL_GAP
    every = max(1, math.ceil(len(checks) / 8))
    slot = (width - 24) / max(1, len(checks) - 1) if len(checks) > 1 else 40
    return {
        "width": CHART_W,
        "height": bottom + 30,
        "left": LEFT,
        "right": CHART_W - RIGHT,
        "bottom": bottom,
        "panels": panels,
        "bands": [
            {"x": x - min(slot, 40) / 2, "w": min(slot, 40), "title": f"Alert: {lb}"}
            for x, a, lb in zip(xs, alerts, labels, strict=True)
            if a
        ],
        "skipped": [
            {"x": x, "title": f"{lb}: not tested, {c.skipped}"}
            for x, c, lb in zip(xs, checks, labels, strict=True)
            if c.skipped
        ],
        "xticks": [
            {
                "x": x,
                "label": f"{c.window_start:%b %d}"
                if c.window_end - c.window_start >= _DAY
                else f"{c.window_start:%d %H:%M}",
            }
            for i, (x, c) in enumerate(zip(xs, checks, strict=True))
            if i % every == 0 or i == len(checks) - 1
        ],
    }


def _run_clusters_url(dataset, check: DriftCheck | None) -> str | None:
    """Where the clusters of the check's scoring run are listed: the health page while it is
    the newest finished run (the one health shows), else the sample table of that run."""
    if check is None or not check.scoring_run_id:
        return None
    latest = latest_done_run(dataset)
    if latest is not None and latest.pk == check.scoring_run_id:
        return reverse("datasets:health", args=[dataset.pk]) + "#clusters"
    return sample_table_url(dataset.pk, run=check.scoring_run_id)


def _reasons(check: DriftCheck) -> list[str]:
    return [drift._describe(r) for r in check.reasons]


def _cluster_rows(dataset, check: DriftCheck) -> list[dict]:
    rows = []
    for c in check.clusters:
        examples = c.get("examples") or []
        rows.append(
            {
                **c,
                "train_pct": 100 * c["train_share"],
                "production_pct": 100 * c["production_share"],
                "change_text": f"{100 * c['change']:+.1f}".replace("-", "\u2212"),
                "url": _table_url(
                    dataset,
                    [
                        {"field": "split", "op": "=", "value": "production"},
                        {"field": "external_id", "op": "in", "value": examples},
                    ],
                )
                if examples
                else None,
                "examples": len(examples),
                # The run's cluster, on the same table the health page's cluster links open.
                "cluster_url": sample_table_url(
                    dataset.pk,
                    {"field": "cluster", "op": "=", "value": c["cluster"]},
                    "-mislabel_score",
                    run=check.scoring_run_id,
                )
                if check.scoring_run_id
                else None,
            }
        )
    return rows


def _examples_url(dataset, examples: list) -> str | None:
    if not examples:
        return None
    return _table_url(
        dataset,
        [
            {"field": "split", "op": "=", "value": "production"},
            {"field": "external_id", "op": "in", "value": examples},
        ],
    )


def _class_rows(dataset, check: DriftCheck) -> list[dict]:
    """The classes of a window's label-shift test, biggest estimated change first."""
    rows = []
    for c in (check.label_shift or {}).get("classes", []):
        examples = c.get("examples") or []
        rows.append(
            {
                **c,
                "train_pct": 100 * c["train_share"],
                "production_pct": 100 * c["production_share"],
                "predicted_train_pct": 100 * c["train_predicted_share"],
                "predicted_production_pct": 100 * c["production_predicted_share"],
                "change_text": f"{100 * c['change']:+.1f}".replace("-", "\u2212"),
                "se_text": f"{100 * c['standard_error']:.1f}",
                "p_text": _p_text(c["p_value"]),
                "url": _examples_url(dataset, examples),
                "examples": len(examples),
            }
        )
    return rows


def _new_kind(dataset, check: DriftCheck) -> dict | None:
    new = check.new_kind or {}
    if "share" not in new:
        return None
    return {
        **new,
        "p_text": _p_text(new["p_value"]),
        "share_text": f"{new['share']:.1%}",
        "nominal_text": f"{new['nominal']:.0%}",
        "estimated_text": None
        if new.get("estimated_share") is None
        else f"{new['estimated_share']:.0%}",
        "upper_text": None if new.get("upper") is None else f"{new['upper']:.0%}",
        "url": _examples_url(dataset, new.get("examples") or []),
        "examples": len(new.get("examples") or []),
        "tail_p_text": None if new.get("tail_p_value") is None else _p_text(new["tail_p_value"]),
        "rank_p_text": None if new.get("rank_p_value") is None else _p_text(new["rank_p_value"]),
        "score_url": _examples_url(dataset, new.get("score_examples") or []),
        "score_examples": len(new.get("score_examples") or []),
    }


def _api_example(dataset) -> str:
    """A request body for the empty page: one sample of this dataset's modality and classes."""
    content = {
        "text": ("text", "Where is my order?"),
        "image": ("image", "frames/1001.jpg"),
        "tabular": ("fields", {"age": 41, "plan": "pro"}),
    }[dataset.modality]
    classes = list(dataset.labels) or ["a", "b"]
    sample = {
        "id": "req-1001",
        content[0]: content[1],
        "embedding": [0.12, -0.03, 0.4],
        "probabilities": {c: round(1 / len(classes), 3) for c in classes[:4]},
        "timestamp": "2025-11-03T14:05:00Z",
        "metadata": {"app_version": "2.4"},
    }
    lines = [
        f"    {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
        for key, value in sample.items()
    ]
    body = '{"samples": [\n  {\n' + ",\n".join(lines) + "\n  }\n]}"
    return body.replace("0.4]", "0.4, …]")  # the vector, shortened


def _context(request, dataset, form=None) -> dict:
    membership = get_membership_for_user(request.user, pk=dataset.project_id)
    policy = drift.monitoring_policy_of(dataset.project)
    checks = list(selectors.drift_checks_of_dataset(dataset)[:SHOWN_WINDOWS])
    tested = [c for c in checks if not c.skipped]
    chosen = None
    if request.GET.get("window", "").isdigit():
        chosen = next((c for c in tested if c.pk == int(request.GET["window"])), None)
    if chosen is None:
        chosen = next((c for c in tested if c.alert), None) or (tested[0] if tested else None)
    space = resolve_space(dataset, "")
    if form is None:
        form = MonitoringPolicyForm(
            initial={name: getattr(policy, name) for name in MonitoringPolicyForm.base_fields}
        )
    return {
        "dataset": dataset,
        "project": dataset.project,
        "policy": policy,
        "form": form,
        "space": space,
        "summary": selectors.production_summary(dataset),
        "chart": drift_chart(checks, policy),
        "windows": [
            {
                "check": c,
                "label": drift.window_label(c),
                "p_text": _p_text(c.p_value),
                "coverage_text": _pct(c.share_out_of_coverage, "%"),
                "shift_text": _pct(c.max_cluster_shift, " pts"),
                "class_text": _pct(c.max_label_shift, " pts"),
                "new_kind_text": _pct(c.new_kind_share, "%"),
                "reasons": _reasons(c),
                "url": _table_url(dataset, _window_parts(c)),
                "chosen": chosen is not None and c.pk == chosen.pk,
            }
            for c in checks
        ],
        "alerts": sum(1 for c in checks if c.alert),
        "chosen": chosen,
        "chosen_label": drift.window_label(chosen) if chosen else "",
        "clusters": _cluster_rows(dataset, chosen) if chosen else [],
        "clusters_run_url": _run_clusters_url(dataset, chosen),
        "classes": _class_rows(dataset, chosen) if chosen else [],
        "new_kind": _new_kind(dataset, chosen) if chosen else None,
        "label_shift_p": _p_text(chosen.label_shift_p_value) if chosen else "—",
        "max_rows": PRODUCTION_MAX_ROWS,
        "can_edit": membership.can(Cap.EDIT_DATA),
        "can_curate": membership.can(Cap.CURATE),
        "api_example": _api_example(dataset),
        "api_url": request.build_absolute_uri(reverse("api:production", args=[dataset.pk])),
        "site_url": request.build_absolute_uri("/").rstrip("/"),
    }


@login_required
@require_safe
def drift_page(request, dataset_id: int):
    dataset = get_dataset_for_user(request.user, dataset_id)
    return render(request, "monitoring/drift.html", _context(request, dataset))


@login_required
@require_POST
def drift_policy(request, dataset_id: int):
    """Save the project's thresholds (curators); the form comes back with its errors."""
    dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.CURATE)
    form = MonitoringPolicyForm(request.POST)
    if form.is_valid():
        try:
            drift.monitoring_policy_update(
                project=dataset.project, by=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(
                request, "Monitoring thresholds saved for every dataset of the project."
            )
            if not request.htmx:
                return redirect("datasets:drift", dataset_id=dataset.pk)
            form = None
    status = 200 if form is None else 400
    if request.htmx:
        return render(
            request, "monitoring/drift.html#policy", _context(request, dataset, form), status=status
        )
    return render(request, "monitoring/drift.html", _context(request, dataset, form), status=status)


@login_required
@require_POST
def drift_check_now(request, dataset_id: int):
    """Queue a check of the dataset's complete windows (those not checked yet)."""
    dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
    drift.drift_check_enqueue(dataset=dataset)
    messages.success(
        request, "Drift check queued: complete windows not checked yet appear here in a minute."
    )
    if request.htmx:
        return render(request, "monitoring/drift.html#checknow", _context(request, dataset))
    return redirect("datasets:drift", dataset_id=dataset.pk)
