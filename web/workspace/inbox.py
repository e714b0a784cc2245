"""The task inbox: my tasks, my roles' tasks to claim, and acting on them.

Tasks come from the engine a page at a time (``Engine.inbox_page``), in its order: priority,
then due time (none last), then id. Each section — my tasks, tasks offered to my roles — shows
its first ``PAGE`` tasks and a "More tasks" button that appends the next page (htmx asks for
``?section=…&after=<cursor>`` and gets the cards and the next button; without JavaScript the
same link opens the section from there). A task shows its record (only when the user may read it), the instructions and the form drawn
from its fields; buttons fields become one submit button per option. Completing validates
against the form (errors shown next to each field, typed values kept, status 422) and the
process continues in the same transaction; the commit then dispatches what the process wrote.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from automation.timeline import ProcessRef
from crm_models.entities import Deal
from crm_models.errors import NotFound, ValidationFailed
from crm_models.org import User
from crm_models.services.records import model_for
from engine.errors import Conflict, EngineError, InvalidTaskData, NotAllowed, TaskNotReady
from engine.errors import NotFound as EngineNotFound
from engine.runtime import Engine
from engine.store import ProcessDefinition, ProcessInstance, ProcessTask, TaskStatus
from strictnum import id_or_none

from ..auth import require_actor
from ..database import get_db
from ..pages import lookups
from ..pages.messages import at_most_chars, translate
from . import bp

#: tasks per page of a section
PAGE = 25
SECTIONS = ("mine", "offered")

#: The record fields a task card shows, per entity.
SUMMARY_FIELDS = {
    "deal": ("stage", "amount", "company_id", "responsible_id"),
    "lead": ("status", "amount", "company_title", "phones", "responsible_id"),
    "contact": ("phones", "emails", "company_id", "responsible_id"),
    "company": ("phones", "industry", "responsible_id"),
}
_FORM_MESSAGES = {
    "required": "is required", "must be text": "must be a string",
    "must be a date (YYYY-MM-DD)": "must be a date YYYY-MM-DD",
    "not a field of this form": "not a field of this form",
}


@dataclass
class TaskView:
    row: ProcessTask
    mine: bool  # assigned to or claimed by the user (else: offered, to claim)
    overdue: bool
    record: Any | None
    process: ProcessRef | None
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _engine() -> Engine:
    return current_app.extensions["engine"]


def _now() -> dt.datetime:
    return _engine().clock.now()


def _processes(rows: list[ProcessTask]) -> dict[int, ProcessRef]:
    ids = sorted({t.instance_id for t in rows})
    if not ids:
        return {}
    q = (select(ProcessInstance.id, ProcessDefinition.key, ProcessDefinition.name,
                ProcessDefinition.version)
         .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
         .where(ProcessInstance.id.in_(ids)))
    return {i: ProcessRef(k, n or k, v, i) for i, k, n, v in get_db().execute(q)}


def _records(rows: list[ProcessTask]) -> dict[tuple[str, int], Any]:
    """The tasks' records the user may read, by (entity, id): one query per entity type
    (an inbox holds hundreds of tasks). A record that is gone or not readable is left out:
    its task still shows, the record does not."""
    wanted: dict[str, set[int]] = {}
    for t in rows:
        if t.entity_type in SUMMARY_FIELDS and t.entity_id is not None:
            wanted.setdefault(t.entity_type, set()).add(t.entity_id)
    actor, out = require_actor(), {}
    for entity, ids in wanted.items():
        model = model_for(entity)
        q = select(model).where(model.id.in_(sorted(ids)))
        if entity == "deal":
            q = q.options(selectinload(Deal.stage))
        for record in get_db().scalars(q):
            if actor.allows_record(entity, "read", record.responsible_id, record.opened):
                out[(entity, record.id)] = record
    return out


def views(rows: list[ProcessTask], uid: int) -> list[TaskView]:
    now, procs, records = _now(), _processes(rows), _records(rows)
    out = []
    for t in rows:
        mine = (t.status == TaskStatus.CLAIMED and t.claimed_by == uid) or (
            t.status == TaskStatus.OPEN and t.assignee_id == uid)
        overdue = t.status in TaskStatus.ACTIVE and t.due_at is not None and t.due_at < now
        record = records.get((t.entity_type or "", t.entity_id or 0))
        out.append(TaskView(t, mine, overdue, record, procs.get(t.instance_id)))
    return out  # in the engine's (the pages') order


def _involved(task: ProcessTask, uid: int | None) -> bool:
    return uid is not None and uid in (task.assignee_id, task.claimed_by, task.completed_by,
                                       *(task.candidate_ids or []))


def _task_for_user(task_id: int) -> ProcessTask:
    actor = require_actor()
    try:
        task = _engine().task(get_db(), task_id)
    except EngineNotFound:
        task = None
    if task is None or not _involved(task, actor.user_id):
        raise NotFound(f"No task with id {task_id}")
    return task


@dataclass
class Section:
    """One section of the inbox page: a page of its tasks, how many it holds in all, and the
    cursor of the next page (None: nothing more)."""

    name: str
    tasks: list[TaskView]
    total: int
    next: str | None


def _section(name: str, uid: int, after: str | None = None) -> Section:
    db, engine = get_db(), _engine()
    page = engine.inbox_page(db, uid, limit=PAGE, after=after, scope=name)
    return Section(name, views(page.tasks, uid), engine.inbox_count(db, uid, scope=name),
                   page.next)


def _paging_args() -> tuple[str | None, str | None]:
    """``section`` and ``after`` of a "More tasks" link; a bad one is a 422 naming it."""
    section = request.args.get("section") or None
    after = request.args.get("after") or None
    if section is not None and section not in SECTIONS:
        raise ValidationFailed({"section": "must be mine or offered"})
    if after is not None and section is None:
        raise ValidationFailed({"section": "is needed with 'after'"})
    return section, after


def _render(status: int = 200, *, failed: TaskView | None = None,
            single: ProcessTask | None = None, section: str | None = None,
            after: str | None = None) -> Any:
    actor = require_actor()
    uid = actor.user_id or 0
    if single is None:
        sections = {name: _section(name, uid, after if name == section else None)
                    for name in SECTIONS}
        shown = {v.row.id for part in sections.values() for v in part.tasks}
        if failed is not None and failed.row.id not in shown:
            single = failed.row  # a task from a later page: shown alone, with its errors
    if single is not None:
        sections = {"single": Section("single", views([single], uid), 1, None)}
    if failed is not None:
        for part in sections.values():
            for v in part.tasks:
                if v.row.id == failed.row.id:
                    v.errors, v.values = failed.errors, failed.values
    me: User = g.user
    away = me.is_out_of_office(_now())
    colleagues = [u for u in lookups.active_users() if u.id != uid]
    return render_template(
        "workspace/inbox.html", sections=sections, single=single is not None,
        resumed=section if after else None,
        colleagues=colleagues, users=lookups.users(), summary_fields=SUMMARY_FIELDS,
        away=away, deputy=lookups.users().get(me.deputy_id) if me.deputy_id else None,
        now=_now()), status


@bp.get("/inbox")
def inbox() -> Any:
    section, after = _paging_args()
    if section is not None and request.headers.get("HX-Request"):
        uid = require_actor().user_id or 0
        part = _section(section, uid, after)
        return render_template(
            "workspace/_inbox_more.html", more_part=part,
            colleagues=[u for u in lookups.active_users() if u.id != uid],
            users=lookups.users(), summary_fields=SUMMARY_FIELDS)
    return _render(section=section, after=after)


@bp.get("/inbox/tasks/<int:task_id>")
def task_page(task_id: int) -> Any:
    return _render(single=_task_for_user(task_id))


def _engine_failure(exc: EngineError) -> Any:
    if isinstance(exc, Conflict | TaskNotReady):
        message = _("Someone else has already taken or finished this task, or it is no longer "
                    "waiting for input.")
    elif isinstance(exc, NotAllowed):
        message = _("This task is not yours to act on.")
    else:
        message = translate(exc.message)
    flash(message, "error")
    return _render(exc.status)


def _form_errors(fields: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, msg in fields.items():
        if msg.startswith("longer than "):
            count = msg.removeprefix("longer than ").split()[0]
            out[name] = at_most_chars(int(count)) if count.isdigit() else msg
        elif msg == "not a field of this form":
            out[name] = _("is not a field of this form")
        else:
            out[name] = translate(_FORM_MESSAGES.get(msg, msg))
    return out


@bp.post("/inbox/tasks/<int:task_id>/<any(claim, unclaim, delegate, complete):action>")
def task_action(task_id: int, action: str) -> Any:
    task = _task_for_user(task_id)
    actor = require_actor()
    db, engine, uid = get_db(), _engine(), actor.user_id or 0
    try:
        if action == "claim":
            engine.claim(db, task_id, uid)
            note = _("The task is yours now.")
        elif action == "unclaim":
            engine.unclaim(db, task_id, uid)
            note = _("The task is back with its candidates.")
        elif action == "delegate":
            raw = request.form.get("user_id", "")
            to_id = id_or_none(raw)
            to = db.get(User, to_id) if to_id is not None else None
            if to is None or not to.active or to.id == uid:
                db.rollback()
                flash(_("Choose a colleague to hand the task to."), "error")
                return _render(422, failed=TaskView(task, True, False, None, None,
                                                    errors={"user_id": _("choose a colleague")}))
            engine.delegate(db, task_id, uid, to.id)
            note = _("The task is handed to %(name)s.", name=to.full_name)
        else:
            names = [f["name"] for f in task.form or []]
            data = {n: request.form.get(n) for n in names if n in request.form}
            engine.complete(db, task_id, uid, data)
            note = _("Task completed; the process goes on.")
        db.commit()
    except InvalidTaskData as exc:
        db.rollback()
        return _render(422, failed=TaskView(task, True, False, None, None,
                                            errors=_form_errors(exc.fields),
                                            values=request.form.to_dict()))
    except EngineError as exc:
        db.rollback()
        return _engine_failure(exc)
    flash(note, "success")
    return redirect(url_for("workspace.inbox"))
