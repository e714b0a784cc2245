"""The admin page of timers: schedules (timer start events) with their last and next fire,
upcoming timers of waiting instances, and timers that failed to fire.

Admins only (403 for others, the login page for visitors). Read-only: schedules are changed
by deploying or (de)activating a process version.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, current_app, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.routing import BuildError

from engine.store import ProcessDefinition, ProcessInstance
from engine.timers import CRON, CYCLE, DATE

from .auth import login_required, require_actor
from .database import get_db

bp = Blueprint("timers", __name__, url_prefix="/admin/timers")
UPCOMING = 100


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _link(endpoint: str, **values: Any) -> str | None:
    """A link to another section's page, or None if that page does not exist here."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


@bp.get("/")
@login_required
def timers_page() -> Any:
    if not require_actor().is_admin:
        abort(403)
    db = get_db()
    service = current_app.extensions["engine"].timer_service
    upcoming = service.upcoming(db, limit=UPCOMING)
    failed = service.failed(db)
    rows = upcoming + failed
    definitions = {d.id: d for d in db.scalars(select(ProcessDefinition).where(
        ProcessDefinition.id.in_({t.definition_id for t in rows})))} if rows else {}
    instances = {i.id: i for i in db.scalars(select(ProcessInstance).where(
        ProcessInstance.id.in_({t.instance_id for t in rows if t.instance_id})))} \
        if rows else {}
    schedule_kinds = {CRON: _("cron schedule"), CYCLE: _("ISO 8601 cycle"), DATE: _("date")}
    timer_kinds = {"start": _("schedule start"), "boundary": _("on a task"),
                   "catch": _("waiting in the process"),
                   "event_subprocess": _("starts an event sub-process")}
    return render_template(
        "admin/timers.html", schedules=service.schedules(db), upcoming=upcoming, failed=failed,
        pending=service.pending_count(db), definitions=definitions, instances=instances,
        schedule_kinds=schedule_kinds, timer_kinds=timer_kinds, link=_link, limit=UPCOMING,
        scheduler=current_app.extensions.get("timer_scheduler"),
        record_plural={"deal": "deals", "lead": "leads", "contact": "contacts",
                       "company": "companies"},
        now_path=request.path)
