"""The activity index page: Chart.js charts with the same numbers in tables beside them.

The numbers come from ``crm_models.services.activity_index`` (which decides whose numbers the
user may see). Charts are drawn by ``web/static/dist/charts.js`` (built from
``editor/src/charts.js``) from each canvas's ``data-chart`` spec; without the bundle the
tables alone carry the page.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import render_template, request
from flask_babel import format_date
from flask_babel import gettext as _

from crm_models.services.activity_index import IndexReport, activity_index

from ..auth import require_actor
from ..database import get_db
from . import bp
from .labels import PERIODS

CHART_BUNDLE = Path(__file__).resolve().parent.parent / "static" / "dist" / "charts.js"
#: Employees drawn in the chart (the table lists them all).
CHART_EMPLOYEES = 15


def has_chart_bundle() -> bool:
    return CHART_BUNDLE.exists()


def bucket_labels(report: IndexReport) -> list[str]:
    fmt = {"day": "d MMM", "week": "d MMM", "month": "LLL yyyy"}[report.period]
    return [format_date(b, fmt) for b in report.buckets]


def chart_specs(report: IndexReport) -> dict[str, dict[str, Any]]:
    """Chart.js configurations: the total over time, employees and departments (stacked)."""
    labels = bucket_labels(report)
    total_label = _("Company total") if report.company_wide else _("Total")
    top = report.employees[:CHART_EMPLOYEES]
    return {
        "total": {"type": "line", "data": {"labels": labels, "datasets": [
            {"label": total_label, "data": report.total.counts, "tension": 0.2}]}},
        "employees": {"type": "bar", "data": {"labels": [r.label for r in top], "datasets": [
            {"label": _("Actions"), "data": [r.total for r in top]}]},
            "options": {"indexAxis": "y"}},
        "departments": {"type": "bar", "data": {"labels": labels, "datasets": [
            {"label": r.label or _("No department"), "data": r.counts}
            for r in report.departments]},
            "options": {"scales": {"x": {"stacked": True},
                                   "y": {"stacked": True, "beginAtZero": True}}}},
    }


@bp.get("/activity-index")
def activity_index_page() -> Any:
    actor = require_actor()
    period = request.args.get("period", "day")
    if period not in PERIODS:
        period = "day"
    report = activity_index(get_db(), actor, period=period)
    return render_template("workspace/index.html", report=report, periods=PERIODS,
                           labels=bucket_labels(report), charts=chart_specs(report))
