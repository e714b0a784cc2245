"""``bizproc.workflow.template.list``, ``bizproc.workflow.start``, ``bizproc.task.list`` and
``bizproc.task.complete`` over our BPMN engine.

A "template" is the active version of a process definition (its ``ID`` is the definition id,
``SYSTEM_CODE`` its key); a "workflow" is a process instance; a "task" is an open user task in
the webhook user's inbox. ``PARAMETERS`` given to ``bizproc.workflow.start`` reach the process
as ``parameters.<NAME>``. ``bizproc.task.complete`` takes the form values in ``FIELDS``; for
a task whose form has one buttons field left empty, ``STATUS`` 1 (yes) picks its first option
and 2 (no) its second, like Bitrix24's approval tasks. Cancelling a task (``STATUS`` 4) is not
something our tasks support and is refused.
"""
from __future__ import annotations

import re
from typing import Any

from flask import current_app
from sqlalchemy import select

from automation.snapshot import SnapshotError, start_data
from crm_models.services.records import load
from engine import errors as engine_errors
from engine.ports import StartRequest
from engine.runtime import Engine
from engine.store import ProcessDefinition, ProcessInstance, ProcessTask, TaskStatus
from integrations.bitrix_fields import format_datetime
from strictnum import id_or_none

from .crm_methods import start_param
from .envelope import PAGE, BitrixError, ListResult
from .org_methods import _filtered, _page
from .registry import CallContext, method

DOCUMENT_TYPES = {"lead": "CCrmDocumentLead", "deal": "CCrmDocumentDeal",
                  "contact": "CCrmDocumentContact", "company": "CCrmDocumentCompany"}
ENTITY_BY_DOCUMENT = {v.lower(): k for k, v in DOCUMENT_TYPES.items()}
DOC_ID_RE = re.compile(r"^(LEAD|DEAL|CONTACT|COMPANY)_([0-9]{1,18})$", re.IGNORECASE)
TEMPLATE_FIELDS = ("ID", "MODULE_ID", "ENTITY", "DOCUMENT_TYPE", "AUTO_EXECUTE", "NAME",
                   "TEMPLATE", "PARAMETERS", "VARIABLES", "CONSTANTS", "MODIFIED", "IS_MODIFIED",
                   "USER_ID", "SYSTEM_CODE")
TASK_FILTER_KEYS = ("ID", "WORKFLOW_ID", "STATUS", "USER_ID", "ACTIVITY", "ACTIVITY_NAME",
                    "NAME", "WORKFLOW_TEMPLATE_ID", "DOCUMENT_NAME")
STATUS_WORDS = {"yes": 1, "no": 2, "ok": 3, "cancel": 4}


def _engine() -> Engine:
    return current_app.extensions["engine"]


def _engine_error(exc: engine_errors.EngineError, *, task: bool) -> BitrixError:
    if isinstance(exc, engine_errors.NotAllowed):
        return BitrixError(403, "ACCESS_DENIED", str(exc))
    if isinstance(exc, engine_errors.InvalidTaskData):
        details = "; ".join(f"{k}: {v}" for k, v in (exc.fields or {}).items())
        return BitrixError(400, "ERROR_TASK_VALIDATION", details or str(exc))
    if isinstance(exc, (engine_errors.Conflict, engine_errors.TaskNotReady)):
        return BitrixError(400, "ERROR_TASK_COMPLETED" if task else "ERROR_CONFLICT", str(exc))
    if isinstance(exc, engine_errors.NotFound):
        return BitrixError(400, "ERROR_TASK_NOT_FOUND" if task else "ERROR_WRONG_WORKFLOW_ID",
                           str(exc))
    return BitrixError(400, "ERROR_BIZPROC", str(exc))


def _entity_of(d: ProcessDefinition) -> str | None:
    """The record type a definition works on, from its start messages (``deal.created``)."""
    for trigger in d.triggers or []:
        entity = str(trigger).partition(".")[0]
        if entity in DOCUMENT_TYPES:
            return entity
    return None


def template_out(d: ProcessDefinition, tz: str) -> dict[str, Any]:
    entity = _entity_of(d)
    doc = DOCUMENT_TYPES.get(entity or "", "CCrmDocumentDeal")
    auto = 0
    for trigger in d.triggers or []:
        auto |= 1 if str(trigger).endswith(".created") else 2 if str(trigger).endswith(
            (".updated", ".stage_changed")) else 0
    return {
        "ID": str(d.id), "MODULE_ID": "crm", "ENTITY": doc,
        "DOCUMENT_TYPE": ["crm", doc, (entity or "deal").upper()], "AUTO_EXECUTE": str(auto),
        "NAME": d.name or d.key, "TEMPLATE": [], "PARAMETERS": [],
        "VARIABLES": d.variables or {}, "CONSTANTS": [],
        "MODIFIED": format_datetime(d.deployed_at, tz), "IS_MODIFIED": "N",
        "USER_ID": str(d.deployed_by) if d.deployed_by else None, "SYSTEM_CODE": d.key,
    }


def _select(raw: Any, default: tuple[str, ...], known: tuple[str, ...]) -> list[str]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        return list(default)
    names = [str(x).upper() for x in raw]
    if "*" in names:
        return list(known)
    return ["ID", *[n for n in names if n in known and n != "ID"]]


@method("bizproc.workflow.template.list", "bizproc")
def template_list(ctx: CallContext, params: dict[str, Any]) -> ListResult:
    """The active process definitions. ``SELECT`` defaults to ``['ID']`` as in Bitrix24."""
    rows = [template_out(d, ctx.tz) for d in _engine().definitions(ctx.session, active=True)]
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise BitrixError(400, "INVALID_ARG_VALUE", "FILTER must be an object")
    rows = _filtered(rows, flt, ("ID", "MODULE_ID", "ENTITY", "AUTO_EXECUTE", "NAME",
                                 "SYSTEM_CODE", "USER_ID"))
    fields = _select(params.get("select"), ("ID",), TEMPLATE_FIELDS)
    result = _page(rows, params)
    result.items = [{k: r[k] for k in fields} for r in result.items]
    return result


def _document(raw: Any) -> tuple[str, int]:
    if isinstance(raw, dict):
        raw = list(raw.values())
    if not isinstance(raw, list) or len(raw) != 3 or not all(isinstance(x, str) for x in raw):
        raise BitrixError(400, "ERROR_WRONG_DOCUMENT_ID",
                          "DOCUMENT_ID must be ['crm', 'CCrmDocumentDeal', 'DEAL_<id>']")
    module, doc_type, doc_id = raw
    entity = ENTITY_BY_DOCUMENT.get(doc_type.lower())
    m = DOC_ID_RE.match(doc_id.strip())
    if module.lower() != "crm" or entity is None or m is None or m.group(1).lower() != entity:
        raise BitrixError(400, "ERROR_WRONG_DOCUMENT_ID",
                          f"Unsupported document {str(raw)[:100]}; use a CRM lead, deal, "
                          f"contact or company")
    return entity, int(m.group(2))


@method("bizproc.workflow.start", "bizproc")
def workflow_start(ctx: CallContext, params: dict[str, Any]) -> str:
    """Start template ``TEMPLATE_ID`` on ``DOCUMENT_ID``; the caller needs the right to change
    that record. Returns the workflow (process instance) id as a string."""
    raw_id = id_or_none(params.get("template_id"))
    if raw_id is None:
        raise BitrixError(400, "ERROR_WRONG_WORKFLOW_ID", "TEMPLATE_ID is not a template id")
    entity, entity_id = _document(params.get("document_id"))
    parameters = params.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BitrixError(400, "ERROR_WRONG_PARAMETERS", "PARAMETERS must be an object")
    engine = _engine()
    try:
        definition = engine.definition(ctx.session, raw_id)
    except engine_errors.NotFound:
        raise BitrixError(400, "ERROR_WRONG_WORKFLOW_ID", f"No template {raw_id}") from None
    if not definition.active:
        raise BitrixError(400, "ERROR_WRONG_WORKFLOW_ID", f"Template {raw_id} is not active")
    load(ctx.session, ctx.actor, entity, entity_id, "update")  # the process will act on it
    try:
        data = start_data(ctx.session, entity, entity_id)
    except SnapshotError as exc:  # pragma: no cover - load() above already checked
        raise BitrixError(400, "ERROR_WRONG_DOCUMENT_ID", str(exc)) from None
    data["parameters"] = {str(k): v for k, v in parameters.items()}
    try:
        inst = engine.start(ctx.session, definition, StartRequest(
            data=data, entity_type=entity, entity_id=entity_id, started_by=ctx.actor.user_id))
    except engine_errors.EngineError as exc:
        raise _engine_error(exc, task=False) from exc
    return str(inst.id)


def _task_status(t: ProcessTask) -> int:
    if t.status in TaskStatus.ACTIVE:
        return 0
    return 4 if t.status == TaskStatus.CANCELLED else 3


def task_out(t: ProcessTask, inst: ProcessInstance | None, d: ProcessDefinition | None,
             tz: str) -> dict[str, Any]:
    doc = None
    if t.entity_type in DOCUMENT_TYPES and t.entity_id is not None:
        doc = ["crm", DOCUMENT_TYPES[t.entity_type], f"{t.entity_type.upper()}_{t.entity_id}"]
    buttons = any(f.get("type") == "buttons" for f in t.form or [])
    return {
        "ID": str(t.id), "WORKFLOW_ID": str(t.instance_id), "NAME": t.name,
        "DESCRIPTION": t.instructions, "DOCUMENT_NAME": (f"{t.entity_type} {t.entity_id}"
                                                         if doc else ""),
        "DOCUMENT_ID": doc, "DOCUMENT_URL": (f"/{t.entity_type}s/{t.entity_id}" if doc else ""),
        "STATUS": str(_task_status(t)), "USER_ID": str(t.claimed_by or t.assignee_id or ""),
        "USER_STATUS": "0" if t.status in TaskStatus.ACTIVE else "3",
        "ACTIVITY": "ApproveActivity" if buttons else "RequestInformationActivity",
        "ACTIVITY_NAME": t.element_id, "MODIFIED": format_datetime(t.created_at, tz),
        "OVERDUE_DATE": format_datetime(t.due_at, tz),
        "WORKFLOW_TEMPLATE_ID": str(d.id) if d else None,
        "WORKFLOW_TEMPLATE_NAME": (d.name or d.key) if d else None,
        "WORKFLOW_STARTED": format_datetime(inst.started_at, tz) if inst else None,
        "WORKFLOW_STARTED_BY": str(inst.started_by) if inst and inst.started_by else None,
        "PARAMETERS": {"Fields": t.form or []},
    }


@method("bizproc.task.list", "bizproc")
def task_list(ctx: CallContext, params: dict[str, Any]) -> ListResult:
    """Open tasks in the user's inbox (an administrator may ask for another ``USER_ID``)."""
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise BitrixError(400, "INVALID_ARG_VALUE", "FILTER must be an object")
    user_id = ctx.actor.user_id
    wanted = flt.get("USER_ID", flt.get("user_id"))
    if wanted not in (None, ""):
        wanted_id = id_or_none(wanted)
        if wanted_id is None:
            raise BitrixError(400, "INVALID_ARG_VALUE", "FILTER[USER_ID] must be a user id")
        if wanted_id != user_id and not ctx.actor.is_admin:
            raise BitrixError(403, "ACCESS_DENIED", "Only administrators see others' tasks")
        user_id = wanted_id
    assert user_id is not None
    rest = {k: v for k, v in flt.items() if str(k).upper().lstrip("=!<>@%") != "USER_ID"}
    if rest:  # filters on what a task shows (status, activity, names): the inbox, filtered
        rows = _task_rows(ctx, _engine().inbox(ctx.session, user_id))
        result = _page(_filtered(rows, rest, TASK_FILTER_KEYS), params)
    else:  # the common call: only the page asked for is read and converted
        result = _inbox_page(ctx, user_id, start_param(params))
    known = tuple(result.items[0]) if result.items else ("ID",)
    fields = _select(params.get("select"), known, known)
    result.items = [{k: r[k] for k in fields if k in r} for r in result.items]
    return result


def _inbox_page(ctx: CallContext, user_id: int, start: int) -> ListResult:
    """Bitrix24's page of 50 from ``start`` (an offset; -1: the first page without
    ``total``), in inbox order; ``next`` while more tasks follow, as ``_page`` gives it."""
    engine, offset = _engine(), max(start, 0)
    tasks = engine.inbox_slice(ctx.session, user_id, offset=offset, limit=PAGE + 1)
    more, tasks = len(tasks) > PAGE, tasks[:PAGE]
    if start == -1:
        return ListResult(_task_rows(ctx, tasks), None, None)
    total = engine.inbox_count(ctx.session, user_id)
    if tasks:  # a task may have arrived between the two reads
        total = max(total, offset + len(tasks))
    return ListResult(_task_rows(ctx, tasks), total, offset + PAGE if more else None)


def _task_rows(ctx: CallContext, tasks: list[ProcessTask]) -> list[dict[str, Any]]:
    instances = {i.id: i for i in ctx.session.scalars(select(ProcessInstance).where(
        ProcessInstance.id.in_({t.instance_id for t in tasks})))} if tasks else {}
    defs = {d.id: d for d in ctx.session.scalars(select(ProcessDefinition).where(
        ProcessDefinition.id.in_({i.definition_id for i in instances.values()})))} \
        if instances else {}
    rows = []
    for t in tasks:
        inst = instances.get(t.instance_id)
        rows.append(task_out(t, inst, defs.get(inst.definition_id) if inst else None, ctx.tz))
    return rows


def _status(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, str) and raw.strip().lower() in STATUS_WORDS:
        return STATUS_WORDS[raw.strip().lower()]
    if isinstance(raw, (int, str)) and not isinstance(raw, bool) and str(raw).strip() in (
            "1", "2", "3", "4"):
        return int(str(raw).strip())
    raise BitrixError(400, "ERROR_TASK_VALIDATION", "STATUS must be 1 (yes), 2 (no), 3 (ok) "
                                                    "or 4 (cancel)")


@method("bizproc.task.complete", "bizproc")
def task_complete(ctx: CallContext, params: dict[str, Any]) -> bool:
    raw_id = id_or_none(params.get("task_id"))
    if raw_id is None:
        raise BitrixError(400, "ERROR_TASK_NOT_FOUND", "TASK_ID is not a task id")
    status = _status(params.get("status"))
    if status == 4:
        raise BitrixError(400, "ERROR_TASK_VALIDATION", "Our tasks cannot be cancelled; "
                                                        "complete them with their form")
    fields = params.get("fields") or {}
    if not isinstance(fields, dict):
        raise BitrixError(400, "ERROR_TASK_VALIDATION", "FIELDS must be an object")
    engine = _engine()
    uid = ctx.actor.user_id
    try:
        row = engine.task(ctx.session, raw_id)
        if uid is None or uid not in (row.assignee_id, row.claimed_by,
                                      *(row.candidate_ids or [])):
            raise engine_errors.NotFound(f"task {raw_id} not found")
        data = dict(fields)
        form = row.form or []
        buttons = [f for f in form if f.get("type") == "buttons" and f["name"] not in data]
        if status in (1, 2) and len(buttons) == 1 and len(buttons[0].get("options", [])) >= 2:
            data[buttons[0]["name"]] = buttons[0]["options"][status - 1]["value"]
        comment = params.get("comment")
        if isinstance(comment, str) and comment and any(
                f["name"] == "comment" for f in form) and "comment" not in data:
            data["comment"] = comment
        if row.status == TaskStatus.OPEN and row.assignee_id != uid:
            engine.claim(ctx.session, raw_id, uid)  # offered to a group: take it, then finish
        engine.complete(ctx.session, raw_id, uid, data)
    except engine_errors.EngineError as exc:
        raise _engine_error(exc, task=True) from exc
    return True

