"""Sales reports and process analytics: tables with Chart.js charts beside them (the charts
bundle draws each ``<canvas data-chart>``), filters in the query string, and the same tables
as CSV or XLSX (``?export=csv|xlsx``) for users with the deal export right.

The figures come from ``crm_models.services.reports`` and ``automation.process_analytics``,
which count only what the user may read."""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from automation.process_analytics import Figures, process_report
from crm_models.entities import Pipeline
from crm_models.errors import ValidationFailed
from crm_models.org import Department
from crm_models.services import reports as rep
from engine.store import ProcessDefinition

from ..auth import require_actor
from ..database import get_db
from ..reports_export import Table, export_response
from . import bp
from .format import SOURCE_LABELS
from .messages import translate_fields

EXPORTS = ("csv", "xlsx")


def _today() -> dt.date:
    """Today in the business time zone (the periods' days are its days)."""
    zone = ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Europe/Moscow")
    return dt.datetime.now(zone).date()


def _filter(db: Any) -> tuple[rep.ReportFilter | None, dict[str, str]]:
    try:
        return rep.parse_filter(db, request.args, today=_today()), {}
    except ValidationFailed as exc:
        return None, translate_fields(exc.fields)


def _choices(db: Any) -> dict[str, Any]:
    return {"pipelines": list(db.scalars(select(Pipeline).order_by(Pipeline.sort,
                                                                   Pipeline.id))),
            "departments": list(db.scalars(select(Department).order_by(Department.name)))}


def _export_wanted(actor: Any) -> str | None:
    fmt = request.args.get("export")
    if fmt is None:
        return None
    if fmt not in EXPORTS:
        abort(400)
    if actor.level("deal", "export") == 0:
        abort(403)
    return fmt


def _money(amounts: dict[str, Any]) -> str:
    return "; ".join(f"{v} {c}" for c, v in sorted(amounts.items()))


def _pct(value: float | None) -> Any:
    return "" if value is None else value


# --- sales -----------------------------------------------------------------------------------

def _source(code: str | None) -> str:
    """A lead source by its name in the user's language (its code when the CRM has no label)."""
    return str(SOURCE_LABELS.get(code or "", code or "—"))


def sales_tables(funnel: rep.Funnel, sources: list[rep.SourceRow],
                 closed: rep.WonLost) -> list[Table]:
    won_lost_header = [_("Won"), _("Lost"), _("Win rate, %"), _("Won amount")]
    return [
        (_("Funnel"), [_("Stage"), _("Reached"), _("Conversion, %"), _("Now in stage")],
         [[s.name, s.reached, _pct(s.conversion), s.now] for s in funnel.stages]
         + [[s.name, "", "", s.now] for s in funnel.lost_stages]),
        (_("Leads by source"), [_("Source"), _("Leads"), _("Converted"), _("Conversion, %")],
         [[_source(r.source) if r.source != "*" else _("Total"), r.leads, r.converted, _pct(r.rate)]
          for r in sources]),
        (_("Won and lost by manager"), [_("Manager"), *won_lost_header],
         [[r.label, r.won, r.lost, _pct(r.win_rate), _money(r.won_amount)]
          for r in closed.by_manager]),
        (_("Won and lost by month"), [_("Month"), *won_lost_header],
         [[r.label, r.won, r.lost, _pct(r.win_rate), _money(r.won_amount)]
          for r in closed.by_month]),
    ]


def sales_charts(funnel: rep.Funnel, sources: list[rep.SourceRow],
                 closed: rep.WonLost) -> dict[str, Any]:
    src = [r for r in sources if r.source != "*"]
    return {
        "funnel": {"type": "bar", "data": {"labels": [s.name for s in funnel.stages],
                                           "datasets": [{"label": _("Reached"), "data": [
                                               s.reached for s in funnel.stages]}]},
                   "options": {"indexAxis": "y"}},
        "sources": {"type": "bar", "data": {"labels": [_source(r.source) for r in src],
                                            "datasets": [
            {"label": _("Leads"), "data": [r.leads for r in src]},
            {"label": _("Converted"), "data": [r.converted for r in src]}]}},
        "managers": {"type": "bar", "data": {"labels": [r.label for r in closed.by_manager],
                                             "datasets": [
            {"label": _("Won"), "data": [r.won for r in closed.by_manager]},
            {"label": _("Lost"), "data": [r.lost for r in closed.by_manager]}]}},
        "months": {"type": "bar", "data": {"labels": [r.label for r in closed.by_month],
                                           "datasets": [
            {"label": _("Won"), "data": [r.won for r in closed.by_month]},
            {"label": _("Lost"), "data": [r.lost for r in closed.by_month]}]}},
    }


@bp.get("/reports/sales")
def sales_report() -> Any:
    actor = require_actor()
    if actor.level("deal", "read") == 0:
        abort(403)
    db = get_db()
    fmt = _export_wanted(actor)
    flt, errors = _filter(db)
    if flt is None:
        return render_template("reports/sales.html", errors=errors, args=request.args,
                               flt=None, **_choices(db)), 422
    funnel = rep.funnel(db, actor, flt)
    sources = rep.lead_conversion(db, actor, flt) if actor.level("lead", "read") else []
    closed = rep.won_lost(db, actor, flt)
    if fmt:
        return export_response(sales_tables(funnel, sources, closed), fmt,
                               f"sales-{flt.start}-{flt.end}")
    return render_template("reports/sales.html", errors={}, args=request.args, flt=flt,
                           funnel=funnel, tables=sales_tables(funnel, sources, closed),
                           charts=sales_charts(funnel, sources, closed),
                           can_export=actor.level("deal", "export") > 0, **_choices(db))


# --- processes -------------------------------------------------------------------------------

def _figure_row(f: Figures, label: str) -> list[Any]:
    return [label, f.instances, f.completed, f.incidents, _pct(f.first_contact_hours),
            f.sla_armed, f.sla_breached, _pct(f.sla_breach_rate), f.tasks_done,
            f.tasks_overdue]


def figure_header(first: str) -> list[str]:
    return [first, _("Instances"), _("Completed"), _("Incidents"),
            _("Routing to first contact, h"), _("With SLA timer"), _("SLA breached"),
            _("SLA breach rate, %"), _("Tasks done"), _("Tasks overdue")]


def process_tables(report: Any) -> list[Table]:
    tables: list[Table] = [
        (_("By process version"), figure_header(_("Process")),
         [_figure_row(f, f.label) for f in report.by_version]),
        (_("By manager"), figure_header(_("Manager")),
         [_figure_row(f, f.label or _("No manager")) for f in report.by_manager]),
        (_("By department"), figure_header(_("Department")),
         [_figure_row(f, f.label or _("No department")) for f in report.by_department]),
    ]
    if report.elements:
        tables.append((_("Time per element"), [_("Element"), _("Passes"),
                                               _("Average time, s")],
                       [[e.element_id, e.passes, e.average_seconds] for e in report.elements]))
    return tables


def process_charts(report: Any) -> dict[str, Any]:
    v = report.by_version
    return {
        "versions": {"type": "bar", "data": {"labels": [f.label for f in v], "datasets": [
            {"label": _("SLA breach rate, %"), "data": [f.sla_breach_rate or 0 for f in v]},
            {"label": _("Routing to first contact, h"),
             "data": [f.first_contact_hours or 0 for f in v]}]}},
        "managers": {"type": "bar", "data": {
            "labels": [f.label or _("No manager") for f in report.by_manager], "datasets": [
                {"label": _("Tasks done"), "data": [f.tasks_done for f in report.by_manager]},
                {"label": _("Tasks overdue"),
                 "data": [f.tasks_overdue for f in report.by_manager]}]}},
        "elements": {"type": "bar", "data": {
            "labels": [e.element_id for e in report.elements], "datasets": [
                {"label": _("Average time, s"),
                 "data": [e.average_seconds for e in report.elements]}]},
            "options": {"indexAxis": "y"}},
    }


@bp.get("/reports/processes")
def process_analytics() -> Any:
    actor = require_actor()
    db = get_db()
    fmt = _export_wanted(actor)
    flt, errors = _filter(db)
    definitions = list(db.execute(select(
        ProcessDefinition.id, ProcessDefinition.key, ProcessDefinition.version,
        ProcessDefinition.name).order_by(ProcessDefinition.key, ProcessDefinition.version)))
    key = request.args.get("key") or None
    raw_def = request.args.get("definition_id") or ""
    definition_id = None
    if raw_def:
        if not raw_def.isdigit() or int(raw_def) not in {d.id for d in definitions}:
            errors["definition_id"] = _("does not exist (id %(id)s)", id=raw_def[:20])
        else:
            definition_id = int(raw_def)
    if key and key not in {d.key for d in definitions}:
        errors["key"] = _("no such process")
    choices = {**_choices(db), "definitions": definitions,
               "keys": sorted({d.key for d in definitions})}
    if flt is None or errors:
        return render_template("reports/processes.html", errors=errors, args=request.args,
                               report=None, **choices), 422
    report = process_report(db, actor, flt, key=key, definition_id=definition_id)
    if fmt:
        return export_response(process_tables(report), fmt,
                               f"processes-{flt.start}-{flt.end}")
    return render_template("reports/processes.html", errors={}, args=request.args,
                           report=report, flt=flt, charts=process_charts(report),
                           tables=process_tables(report),
                           can_export=actor.level("deal", "export") > 0, **choices)
