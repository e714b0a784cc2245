"""Business processes over REST: definitions, instances, user tasks, service operations.

Rights: only the ``design_processes`` flag deploys, activates and deactivates; retry and
cancel need ``design_processes`` or ``manage_settings``. Everyone signed in may list the
definitions; an instance (and its history) is visible to those who may read its entity, and
to process designers and admins. A task is visible to whoever it is assigned, offered or was
claimed by. Engine errors map to HTTP in ``web.errors`` (a definition that cannot be deployed
is a 422 listing ``errors: [{element_id, message}]``; a lost race is a 409).
"""
from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_babel import gettext, pgettext
from sqlalchemy import select

from automation.conflicts import conflict_report
from automation.params import operation_json
from automation.snapshot import ENTITY_TYPES, SnapshotError, start_data
from crm_models.errors import NotFound, PermissionDenied, ValidationFailed
from crm_models.org import User
from crm_models.permissions import Actor
from crm_models.services.records import load, model_for
from engine.ports import StartRequest
from engine.runtime import Engine
from engine.store import ProcessDefinition, ProcessInstance, ProcessTask

from .common import (
    ApiError,
    api_route,
    check_id,
    commit,
    db_actor,
    id_param,
    json_body,
    only_keys,
    page_json,
    paging,
    per_page_param,
    query_args,
    ref,
    single,
)

XML_TYPES = ("application/xml", "text/xml", "application/bpmn+xml")
STATUSES = ("running", "waiting", "completed", "cancelled", "incident")
TAG_DEF, TAG_INST, TAG_TASK = "process definitions", "process instances", "tasks"
OBJ: dict[str, Any] = {"type": "object"}


def _engine() -> Engine:
    return current_app.extensions["engine"]


def _privileged(actor: Actor) -> bool:
    return actor.has_flag("design_processes") or actor.is_admin


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# --- JSON shapes -------------------------------------------------------------------------------

def definition_dict(d: ProcessDefinition, *, full: bool = False) -> dict[str, Any]:
    out = {"id": d.id, "key": d.key, "version": d.version, "name": d.name, "active": d.active,
           "priority": d.priority, "triggers": list(d.triggers or []),
           "manual_start": d.manual_start, "variables": d.variables or {},
           "deployed_by": d.deployed_by, "deployed_at": _iso(d.deployed_at)}
    if full:
        out["bpmn_xml"] = d.bpmn_xml
        out["dmn_xml"] = list(d.dmn_xml or [])
    return out


def instance_dict(i: ProcessInstance, d: ProcessDefinition | None) -> dict[str, Any]:
    incident = None
    if i.incident_element_id:
        incident = {"element_id": i.incident_element_id, "message": i.incident_message,
                    "attempts": i.incident_attempts, "retry_at": _iso(i.incident_retry_at)}
    return {"id": i.id, "definition_id": i.definition_id,
            "definition_key": d.key if d else None, "definition_version": d.version if d else None,
            "status": i.status, "entity_type": i.entity_type, "entity_id": i.entity_id,
            "event_id": i.event_id, "started_by": i.started_by, "started_at": _iso(i.started_at),
            "ended_at": _iso(i.ended_at), "incident": incident, "waiting": i.waiting or []}


def task_dict(t: ProcessTask) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "element_id": t.element_id,
            "instance_id": t.instance_id, "definition_key": t.definition_key,
            "entity_type": t.entity_type, "entity_id": t.entity_id, "status": t.status,
            "assignee_id": t.assignee_id, "candidate_ids": list(t.candidate_ids or []),
            "claimed_by": t.claimed_by, "assignment_note": t.assignment_note,
            "priority": t.priority, "due_at": _iso(t.due_at), "created_at": _iso(t.created_at),
            "completed_at": _iso(t.completed_at), "completed_by": t.completed_by,
            "instructions": t.instructions, "form": t.form, "result": t.result}


# --- service operations and definitions ------------------------------------------------------

@api_route("/service-operations", tag=TAG_DEF, response=OBJ,
           summary="Service operations a BPMN service task may call, with parameter schemas")
def service_operations() -> Any:
    db_actor()
    return {"items": [_translated(operation_json(spec)) for spec in _engine().registry.specs()]}


#: What the editor shows for each parameter name (translated with the "operation parameter"
#: context, so short words do not clash with other catalog entries).
PARAM_LABELS = {
    "user": "User", "role": "Role", "department_head": "Head of department", "stage": "Stage",
    "subject": "Subject", "type": "Activity type", "due": "Due in", "description": "Description",
    "due_days": "Days to pay", "buyer_inn": "Buyer's INN", "buyer_kpp": "Buyer's KPP",
    "title": "Headline", "text": "Text", "responsible": "The responsible",
    "invoice_id": "Invoice", "fields": "Fields", "url": "URL", "event": "Event name",
    "token": "Token", "pipeline_id": "Pipeline", "template": "E-mail template", "lang": "Language",
    "body": "Body", "to": "Recipient", "mailbox": "Mailbox", "attach_invoice": "Attach the invoice",
}


def _translated(op: dict[str, Any]) -> dict[str, Any]:
    """Titles, help and parameter labels in the user's language (the names stay as they are:
    they are what the BPMN stores)."""
    out = {**op, "title": gettext(op["title"]),
           "description": gettext(op["description"]) if op["description"] else ""}
    out["params"] = [{**p, "label": pgettext("operation parameter",
                                             PARAM_LABELS.get(p["name"], p["name"])),
                      "description": gettext(p["description"]) if p["description"] else ""}
                     for p in op["params"]]
    return out


@api_route("/process-definitions", tag=TAG_DEF, response=OBJ, query=("key", "active"),
           summary="Deployed process definitions, and the conflicts between active ones")
def definitions_list() -> Any:
    db, _actor = db_actor()
    args = query_args()
    key, active_raw = single(args, "key"), single(args, "active")
    active = None
    if active_raw is not None:
        if active_raw not in ("0", "1", "true", "false"):
            raise ValidationFailed({"active": "must be 1 or 0"})
        active = active_raw in ("1", "true")
    rows = _engine().definitions(db, key=key, active=active)
    conflicts = conflict_report(_engine().definitions(db, active=True))
    return {"items": [definition_dict(d) for d in rows], "conflicts": conflicts}


@api_route("/process-definitions/<id:definition_id>", tag=TAG_DEF, response=OBJ,
           summary="One definition with its BPMN (and DMN) XML")
def definitions_get(definition_id: int) -> Any:
    db, _actor = db_actor()
    return definition_dict(_engine().definition(db, definition_id), full=True)


def _uploaded_sources() -> tuple[bytes, list[bytes]]:
    if request.mimetype in XML_TYPES:
        return request.get_data(), []
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file") or request.files.get("bpmn")
        if upload is None:
            raise ValidationFailed({"file": "attach the BPMN file as 'file'"})
        return upload.read(), [f.read() for f in request.files.getlist("dmn")]
    raise ApiError(415, "unsupported_media_type", "Send the BPMN as 'application/xml', or as "
                   "multipart/form-data with a 'file' (and optional 'dmn' files)")


@api_route("/process-definitions", methods=("POST",), tag=TAG_DEF, status=201, response=OBJ,
           body=None, query=("activate",), extra={"errors": (409, 415)},
           summary="Deploy a BPMN file (application/xml or multipart with DMN files)")
def definitions_deploy() -> Any:
    db, actor = db_actor()
    actor.require_flag("design_processes")
    bpmn, dmns = _uploaded_sources()
    activate = (single(query_args(), "activate") or request.form.get("activate", "1")) != "0"
    definition = _engine().deploy(db, bpmn, dmns, deployed_by=actor.user_id, activate=activate)
    out = definition_dict(definition)
    commit()
    return out, 201


def _set_active(definition_id: int, active: bool) -> Any:
    db, actor = db_actor()
    actor.require_flag("design_processes")
    engine = _engine()
    d = engine.definition(db, definition_id)
    if active:
        engine.activate(db, d.key, d.version)
    else:
        engine.deactivate(db, d.key, d.version)
    out = definition_dict(d)
    commit()
    return out


@api_route("/process-definitions/<id:definition_id>/activate", methods=("POST",), tag=TAG_DEF,
           response=OBJ, summary="Make this version the one CRM events start")
def definitions_activate(definition_id: int) -> Any:
    return _set_active(definition_id, True)


@api_route("/process-definitions/<id:definition_id>/deactivate", methods=("POST",),
           tag=TAG_DEF, response=OBJ, summary="Stop new starts of this version")
def definitions_deactivate(definition_id: int) -> Any:
    return _set_active(definition_id, False)


@api_route("/process-definitions/<key>/start", methods=("POST",), tag=TAG_DEF, status=201,
           response=OBJ, body=OBJ, extra={"errors": (409,)},
           summary="Start the active version of a process by hand, on a record")
def definitions_start(key: str) -> Any:
    body = json_body(required=False)
    only_keys(body, ("entity_type", "entity_id"), "a process start")
    db, actor = db_actor()
    engine = _engine()
    active = engine.definitions(db, key=key[:200], active=True)
    if not active:
        raise NotFound(f"No active process '{key[:60]}'")
    entity_type, entity_id = body.get("entity_type"), body.get("entity_id")
    data: dict[str, Any] = {}
    if entity_type is None and entity_id is None:
        if not _privileged(actor):
            raise ValidationFailed({"entity_type": "name the record to run the process on"})
    else:
        if entity_type not in ENTITY_TYPES:
            raise ValidationFailed({"entity_type": "must be one of: " + ", ".join(ENTITY_TYPES)})
        entity_id = check_id(entity_id, "entity_id")
        load(db, actor, entity_type, entity_id, "update")  # the process will act on it
        try:
            data = start_data(db, entity_type, entity_id)
        except SnapshotError as exc:  # pragma: no cover - load() above already checked
            raise NotFound(str(exc)) from None
    inst = engine.start(db, active[0], StartRequest(
        data=data, entity_type=entity_type, entity_id=entity_id, started_by=actor.user_id))
    commit()  # also dispatches the CRM events the process wrote
    return _instance_detail(db, inst), 201


# --- instances ---------------------------------------------------------------------------------

def _readable(db: Any, actor: Actor, instances: list[ProcessInstance]) -> list[ProcessInstance]:
    """The instances whose entity the actor may read (all of them for designers/admins)."""
    if _privileged(actor):
        return instances
    wanted: dict[str, set[int]] = {}
    for i in instances:
        if i.entity_type in ENTITY_TYPES and i.entity_id is not None:
            wanted.setdefault(i.entity_type, set()).add(i.entity_id)
    ok: set[tuple[str, int]] = set()
    for entity, ids in wanted.items():
        model = model_for(entity)
        for chunk_start in range(0, len(ids), 500):
            chunk = sorted(ids)[chunk_start:chunk_start + 500]
            ok |= {(entity, i) for i in db.scalars(select(model.id).where(
                model.id.in_(chunk), actor.scope(model, "read")))}
    return [i for i in instances if (i.entity_type, i.entity_id) in ok]


def _instance_for(db: Any, actor: Actor, instance_id: int) -> ProcessInstance:
    inst = _engine().instance(db, instance_id)
    if not _readable(db, actor, [inst]):
        raise NotFound(f"process instance {instance_id} not found")
    return inst


def _instance_detail(db: Any, inst: ProcessInstance) -> dict[str, Any]:
    engine = _engine()
    out = instance_dict(inst, db.get(ProcessDefinition, inst.definition_id))
    out["history"] = [{"id": h.id, "at": _iso(h.at), "event": h.event,
                       "element_id": h.element_id, "user_id": h.user_id,
                       "message": h.message, "changes": h.changes}
                      for h in engine.history(db, inst.id)]
    out["tasks"] = [task_dict(t) for t in engine.tasks(db, instance_id=inst.id, statuses=None)]
    return out


@api_route("/process-instances", tag=TAG_INST, response=OBJ,
           query=("entity_type", "entity_id", "status", "definition", "page", "per_page"),
           summary="Process instances of records the caller may read")
def instances_list() -> Any:
    db, actor = db_actor()
    args = query_args()
    page, per_page = paging(args)
    q = select(ProcessInstance, ProcessDefinition).join(
        ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
    entity_type, entity_id = single(args, "entity_type"), single(args, "entity_id")
    status, key = single(args, "status"), single(args, "definition")
    if entity_type is not None:
        if entity_type not in ENTITY_TYPES:
            raise ValidationFailed({"entity_type": "must be one of: " + ", ".join(ENTITY_TYPES)})
        q = q.where(ProcessInstance.entity_type == entity_type)
    if entity_id is not None:
        q = q.where(ProcessInstance.entity_id == id_param("entity_id", entity_id))
    if status is not None:
        if status not in STATUSES:
            raise ValidationFailed({"status": "must be one of: " + ", ".join(STATUSES)})
        q = q.where(ProcessInstance.status == status)
    if key is not None:
        q = q.where(ProcessDefinition.key == key[:200])
    rows = db.execute(q.order_by(ProcessInstance.id.desc())
                      .limit(per_page).offset((page - 1) * per_page)).all()
    defs = {i.id: d for i, d in rows}
    visible = _readable(db, actor, [i for i, _d in rows])
    return {"items": [instance_dict(i, defs[i.id]) for i in visible], "page": page,
            "per_page": per_page}


@api_route("/process-instances/<id:instance_id>", tag=TAG_INST, response=OBJ,
           summary="One instance with its history and tasks")
def instances_get(instance_id: int) -> Any:
    db, actor = db_actor()
    return _instance_detail(db, _instance_for(db, actor, instance_id))


def _admin_action(instance_id: int, action: str) -> Any:
    db, actor = db_actor()
    if not _privileged(actor):
        raise PermissionDenied("Only process designers and admins may retry or cancel processes")
    engine = _engine()
    engine.instance(db, instance_id)
    if action == "retry":
        inst = engine.retry(db, instance_id, actor.user_id)
    else:
        body = json_body(required=False)
        only_keys(body, ("reason",), "a cancellation")
        reason = body.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 1000:
            raise ValidationFailed({"reason": "must be text of at most 1000 characters"})
        inst = engine.cancel(db, instance_id, actor.user_id, reason)
    commit()
    return _instance_detail(db, inst)


@api_route("/process-instances/<id:instance_id>/retry", methods=("POST",), tag=TAG_INST,
           response=OBJ, extra={"errors": (409,)}, summary="Run the failed element again")
def instances_retry(instance_id: int) -> Any:
    return _admin_action(instance_id, "retry")


@api_route("/process-instances/<id:instance_id>/cancel", methods=("POST",), tag=TAG_INST,
           response=OBJ, body=OBJ, body_required=False, extra={"errors": (409,)},
           summary="Stop an instance for good (its open tasks are withdrawn)")
def instances_cancel(instance_id: int) -> Any:
    return _admin_action(instance_id, "cancel")


# --- tasks -------------------------------------------------------------------------------------

def _task_for(db: Any, actor: Actor, task_id: int) -> ProcessTask:
    row = _engine().task(db, task_id)
    uid = actor.user_id
    involved = uid is not None and uid in (row.assignee_id, row.claimed_by, row.completed_by,
                                           *(row.candidate_ids or []))
    if not (involved or _privileged(actor)):
        raise NotFound(f"task {task_id} not found")
    return row


@api_route("/tasks", tag=TAG_TASK, response=ref("TaskPage"),
           query=("candidate", "per_page", "after"),
           summary="The caller's open and claimed tasks (or, with candidate=1, tasks offered to "
                   "them), in inbox order, a page at a time")
def tasks_list() -> Any:
    """Pages by cursor only: ``next`` of one page is the ``after`` of the page after it, in
    the inbox's order (priority, due time — none last —, id); ``total`` counts the list."""
    db, actor = db_actor()
    args = query_args()
    candidate = single(args, "candidate")
    if candidate not in (None, "0", "1"):
        raise ValidationFailed({"candidate": "must be 1 or 0"})
    if single(args, "page") is not None:  # a client counting pages would loop on page 1
        raise ValidationFailed({"page": "this list pages by 'after' (the 'next' of a page)"})
    per_page = per_page_param(args)
    after = single(args, "after") or None
    uid = actor.user_id or 0  # an actor without a user has no tasks
    scope = "offered" if candidate == "1" else "mine"
    engine = _engine()
    page = engine.inbox_page(db, uid, limit=per_page, after=after, scope=scope)
    total = engine.inbox_count(db, uid, scope=scope)
    return page_json([task_dict(t) for t in page.tasks], total, 1, per_page, page.next)


@api_route("/tasks/<id:task_id>", tag=TAG_TASK, response=OBJ, summary="One task")
def tasks_get(task_id: int) -> Any:
    db, actor = db_actor()
    return task_dict(_task_for(db, actor, task_id))


def _task_action(task_id: int, action: str) -> Any:
    body = json_body(required=False)
    db, actor = db_actor()
    _task_for(db, actor, task_id)
    engine, uid = _engine(), actor.user_id
    if action == "claim":
        only_keys(body, (), "a claim")
        row = engine.claim(db, task_id, uid)
    elif action == "unclaim":
        only_keys(body, (), "an unclaim")
        row = engine.unclaim(db, task_id, uid)
    elif action == "delegate":
        only_keys(body, ("user_id",), "a delegation")
        to = db.get(User, check_id(body.get("user_id"), "user_id"))
        if to is None or not to.active:
            raise ValidationFailed({"user_id": "no active user with this id"})
        row = engine.delegate(db, task_id, uid, to.id)
    else:
        row = engine.complete(db, task_id, uid, body)
    out = task_dict(row)
    commit()  # a completion may run service tasks: their CRM events dispatch now
    return out


@api_route("/tasks/<id:task_id>/claim", methods=("POST",), tag=TAG_TASK, response=OBJ,
           extra={"errors": (409,)}, summary="Take a task offered to you")
def tasks_claim(task_id: int) -> Any:
    return _task_action(task_id, "claim")


@api_route("/tasks/<id:task_id>/unclaim", methods=("POST",), tag=TAG_TASK, response=OBJ,
           extra={"errors": (409,)}, summary="Give a claimed task back to its candidates")
def tasks_unclaim(task_id: int) -> Any:
    return _task_action(task_id, "unclaim")


@api_route("/tasks/<id:task_id>/delegate", methods=("POST",), tag=TAG_TASK, response=OBJ,
           body=OBJ, extra={"errors": (409,)}, summary="Hand the task to another user")
def tasks_delegate(task_id: int) -> Any:
    return _task_action(task_id, "delegate")


@api_route("/tasks/<id:task_id>/complete", methods=("POST",), tag=TAG_TASK, response=OBJ,
           body=OBJ, body_required=False, extra={"errors": (409,)},
           summary="Complete a task with its form's values; the process continues")
def tasks_complete(task_id: int) -> Any:
    return _task_action(task_id, "complete")
