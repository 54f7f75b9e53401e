"""The leaders' report of a project: spend, vendor scorecards, data quality over time and model
lift, with server-drawn SVG charts, date filters, CSV of every table, and a print layout."""

from __future__ import annotations

import datetime as dt
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.core import events
from apps.core.charts import line_path, scale
from apps.core.csv import csv_writer
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.projects.models import Membership
from apps.reports.access import get_report_membership, may_see_reports
from apps.reports.models import ReportSharing
from apps.reports.selectors import FIXED_ERROR, Period, report
from apps.reports.services import report_sharing_set

CHART_W, CHART_H = 560, 180


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@login_required
@require_http_methods(["GET", "POST"])
def project_report(request, slug: str):
    membership = get_report_membership(request.user, slug)
    project = membership.project
    if request.method == "POST":
        get_membership_for_user(request.user, slug=slug, need=Cap.MANAGE_MEMBERS)
        report_sharing_set(
            project=project, viewers=request.POST.get("viewers") == "on", by=request.user
        )
        messages.success(request, "Sharing saved.")
        return redirect("reports:project", slug=slug)
    period = Period(_date(request.GET.get("start")), _date(request.GET.get("end")))
    data = report(project, period)
    if request.GET.get("csv"):
        return _csv(project, data, request.GET["csv"], by=request.user, period=period)
    projects = [
        m.project
        for m in Membership.objects.filter(user=request.user).select_related("project")
        if may_see_reports(m)
    ]
    context = {
        "project": project,
        "projects": projects,
        "period": period,
        "data": data,
        "spend_chart": _bars(
            [
                (r["month"].strftime("%Y-%m"), float(r["amount"]), r["vendor__name"])
                for r in data["spend"]["by_month"]
            ]
        ),
        "lift_charts": [
            {
                "dataset": lift["dataset"],
                "metric": lift["metric"],
                "gain": lift["gain_per_1000"],
                **_line(lift["points"]),
            }
            for lift in data["lift"]
            if lift["points"]
        ],
        "fixed_error": FIXED_ERROR,
        "can_share": membership.can(Cap.MANAGE_MEMBERS),
        "shared": ReportSharing.objects.filter(project=project, viewers=True).exists(),
        "query": request.GET.urlencode(),
    }
    return render(request, "reports/project.html", context)


def _bars(rows: list[tuple[str, float, str]]) -> dict:
    """Bars of spend per month (and vendor), scaled into the chart's box."""
    if not rows:
        return {"bars": [], "width": CHART_W, "height": CHART_H}
    top = max(v for _, v, _ in rows) or 1
    slot = (CHART_W - 40) / len(rows)
    height = scale(0, top, 0, CHART_H - 40)
    bars = []
    for i, (label, value, vendor) in enumerate(rows):
        h = height(value)
        bars.append(
            {
                "x": 30 + i * slot + slot * 0.15,
                "y": CHART_H - 20 - h,
                "w": slot * 0.7,
                "h": h,
                "label": label,
                "value": value,
                "vendor": vendor,
                "tx": 30 + i * slot + slot / 2,
            }
        )
    return {"bars": bars, "width": CHART_W, "height": CHART_H, "top": top}


def _line(points: list[dict]) -> dict:
    """A metric against cumulative spend: the path and its dots."""
    xs = [float(p["spent"]) for p in points]
    ys = [p["value"] for p in points]
    x0, x1 = min(xs), max(xs) or 1
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.2 or 0.01

    px = scale(x0, x1, 40, CHART_W - 20)
    py = scale(y0 - pad, y1 + pad, CHART_H - 25, 20)

    dots = [
        {"x": px(x), "y": py(y), "value": y, "spent": x, "run": p["run"], "version": p["version"]}
        for x, y, p in zip(xs, ys, points, strict=True)
    ]
    return {
        "path": line_path((d["x"], d["y"]) for d in dots),
        "dots": dots,
        "width": CHART_W,
        "height": CHART_H,
    }


def _csv(project, data: dict, table: str, *, by, period: Period) -> HttpResponse:
    if table == "spend":
        header = ["vendor", "month", "amount", "items", "currency"]
        rows = [
            [
                r["vendor__name"],
                r["month"].strftime("%Y-%m"),
                r["amount"],
                r["items"],
                r["currency"],
            ]
            for r in data["spend"]["by_month"]
        ]
    elif table == "commitments":
        header = ["batch", "vendor", "status", "items", "amount", "currency"]
        rows = [
            [c["batch"], c["vendor"], c["status"], c["items"], c["amount"], c["currency"]]
            for c in data["spend"]["commitments"]
        ]
    elif table == "scorecards":
        header = [
            "vendor",
            "batches",
            "gold_accuracy",
            "agreement",
            "turnaround_median_days",
            "turnaround_p90_days",
            "target_days",
            "rework_rate",
        ]
        rows = [
            [
                c["vendor"],
                c["batches"],
                c["gold_accuracy"],
                c["agreement"],
                c["turnaround_median"],
                c["turnaround_p90"],
                c["turnaround_target"],
                c["rework_rate"],
            ]
            for c in data["scorecards"]
        ]
    elif table == "quality":
        header = ["dataset", "version", "flagged", "confirmed", "fixed", "noise_by_split"]
        rows = [
            [d["dataset"], v["version"], v["flagged"], v["confirmed"], v["fixed"], v["noise"]]
            for d in data["quality"]
            for v in d["versions"]
        ]
    elif table == "lift":
        header = ["dataset", "run", "version", "metric", "value", "spent"]
        rows = [
            [d["dataset"], p["run"], p["version"], d["metric"], p["value"], p["spent"]]
            for d in data["lift"]
            for p in d["points"]
        ]
    else:
        raise Http404("No such table.")
    out = io.StringIO()
    w = csv_writer(out)
    w.writerow(header)
    w.writerows(rows)
    events.record(
        events.Event(
            "report.exported",
            project=project,
            actor=by,
            audit=events.Audit(
                target=f"{table} table",
                detail={
                    "table": table,
                    "format": "csv",
                    "rows": len(rows),
                    "start": period.start.isoformat() if period.start else None,
                    "end": period.end.isoformat() if period.end else None,
                },
            ),
        )
    )
    response = HttpResponse(out.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-{table}.csv"'
    return response
