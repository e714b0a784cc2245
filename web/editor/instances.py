"""The instance viewer: the diagram with the path taken, where the instance stands and its
incident; the history with the data changed at each step; retry and cancel for admins."""
from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from automation.process_trace import instance_trace
from crm_models.errors import PermissionDenied
from crm_models.org import User
from engine.data import shorten
from engine.errors import EngineError
from engine.runtime import Engine
from web.api.processes import _instance_for

from ..auth import require_actor
from ..database import get_db
from . import bp, can_operate
from .labels import history_line


def _engine() -> Engine:
    return current_app.extensions["engine"]


@bp.get("/instances/<int:instance_id>")
def instance_page(instance_id: int) -> str:
    actor = require_actor()
    db = get_db()
    inst = _instance_for(db, actor, instance_id)  # NotFound for what the actor may not see
    definition = _engine().definition(db, inst.definition_id)
    trace = instance_trace(db, inst, definition.bpmn_xml)
    history = _engine().history(db, inst.id)
    tasks = _engine().tasks(db, instance_id=inst.id, statuses=None)
    user_ids = {h.user_id for h in history} | {t.assignee_id for t in tasks} | {
        t.completed_by for t in tasks} | {c for t in tasks for c in (t.candidate_ids or [])}
    users = {u.id: u for u in db.scalars(select(User).where(
        User.id.in_(sorted(i for i in user_ids if i))))}
    try:
        data = shorten(_engine().instance_data(db, inst.id))  # a runaway list stays readable
    except EngineError as exc:
        data = {"error": exc.message}
    for incident in trace["incidents"]:  # the diagram's ⚡ tooltip, in the user's language
        incident["message"] = history_line(incident["message"], users)
    config = {"mode": "instance", "bpmnXml": definition.bpmn_xml, "trace": trace}
    return render_template("editor/instance.html", inst=inst, d=definition, trace=trace,
                           history=history, tasks=tasks, users=users, data=data, config=config,
                           can_operate=can_operate(actor))


@bp.post("/instances/<int:instance_id>/<any(retry, cancel):action>")
def instance_action(instance_id: int, action: str) -> Any:
    actor = require_actor()
    if not can_operate(actor):
        raise PermissionDenied(_("Only process designers and admins may retry or cancel "
                                 "processes"))
    db = get_db()
    _instance_for(db, actor, instance_id)
    try:
        if action == "retry":
            _engine().retry(db, instance_id, actor.user_id)
        else:
            _engine().cancel(db, instance_id, actor.user_id,
                             request.form.get("reason", "")[:1000])
    except EngineError as exc:
        db.rollback()
        flash(exc.message, "error")
        return redirect(url_for("editor.instance_page", instance_id=instance_id))
    db.commit()
    flash(_("The instance was retried.") if action == "retry"
          else _("The instance was cancelled."), "success")
    return redirect(url_for("editor.instance_page", instance_id=instance_id))
