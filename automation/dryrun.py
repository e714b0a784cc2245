"""Dry run: what would the drawing do with this record — without saving or calling anything.

``dry_run(session, engine, bpmn, dmns, request)`` validates the drawing, deploys it into the
caller's transaction, starts it on the given start data and runs it up to its first wait
state, then rolls everything back. The caller must pass a session it does not otherwise use
for writing (the whole transaction is rolled back at the end).

What is real and what is not:

* gateways, conditions, scripts and DMN tables run exactly as they will after deploy;
* user tasks are assigned by the real ``Assigner`` over the real org chart, so the result
  names who would get each task (a round-robin pointer moves only inside the rolled-back
  transaction);
* service operations are **not** called: each call is recorded with its parameters and
  answers ``{}`` — a dry run must not change records, send notifications or call webhooks.
  A decision that depends on a service's result is therefore only as good as ``{}``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_models.fields import SCHEMAS, clean
from crm_models.org import User
from crm_models.serialize import json_value
from engine.errors import DefinitionInvalid, ValidationError
from engine.ports import OperationSpec, ProcessContext, StartRequest
from engine.runtime import Engine
from engine.services import ServiceRegistry
from engine.store import ProcessHistory, ProcessTask

from .assignment import department_head, find_department, find_user
from .process_trace import taken_flows
from .snapshot import event_data, user_summary


@dataclass
class DryRunRequest:
    data: dict[str, Any]
    entity_type: str | None = None
    entity_id: int | None = None
    message: str | None = None  # the start trigger; None = the manual start event


@dataclass
class DryRunResult:
    errors: list[ValidationError] = field(default_factory=list)
    status: str = ""
    path: list[str] = field(default_factory=list)  # elements left, in order
    flows: list[str] = field(default_factory=list)  # sequence flows taken
    active: list[str] = field(default_factory=list)  # where the run stopped
    tasks: list[dict[str, Any]] = field(default_factory=list)
    service_calls: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    incident: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"errors": [{"element_id": e.element_id, "message": e.message}
                           for e in self.errors],
                "status": self.status, "path": self.path, "flows": self.flows,
                "active": self.active, "tasks": self.tasks,
                "service_calls": self.service_calls, "waiting": self.waiting,
                "incident": self.incident, "history": self.history, "data": self.data}


class _Recorder:
    """Stands in for one operation: keeps its spec (so literals are typed as for real) and
    records the call instead of making it."""

    def __init__(self, spec: OperationSpec, calls: list[dict[str, Any]]) -> None:
        self.spec = spec
        self._calls = calls

    def __call__(self, session: Session, ctx: ProcessContext, params: Mapping[str, Any],
                 data: Mapping[str, Any]) -> dict[str, Any]:
        call = {"element_id": ctx.element_id, "operation": self.spec.name,
                "title": self.spec.title, "params": dict(params)}
        who = _would_assign(session, self.spec.name, params)
        if who is not None:
            call["assignee"] = who
        self._calls.append(call)
        return {}


def _would_assign(session: Session, operation: str, params: Mapping[str, Any]
                  ) -> dict[str, Any] | None:
    """Who ``crm.assign_responsible`` would make responsible (read only; None if unknown),
    so the dry run names a person instead of showing the parameters."""
    if operation != "crm.assign_responsible":
        return None
    user = None
    if "user" in params:
        user = find_user(session, params["user"])
    elif "department_head" in params:
        dep = find_department(session, params["department_head"])
        user = department_head(session, dep) if dep is not None else None
    if user is None:
        return None
    return {"id": user.id, "full_name": user.full_name, "email": user.email}


def simulated_registry(real: ServiceRegistry, calls: list[dict[str, Any]]) -> ServiceRegistry:
    registry = ServiceRegistry()
    for spec in real.specs():
        registry.register(_Recorder(spec, calls))
    return registry


def _user_json(session: Session, user_id: int | None) -> dict[str, Any] | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    if user is None:
        return {"id": user_id, "full_name": f"#{user_id}", "email": ""}
    return {"id": user.id, "full_name": user.full_name, "email": user.email}


def pick_message(triggers: Sequence[str], manual_start: bool,
                 request: DryRunRequest) -> str | None:
    """The trigger to start on: the requested one, else the first about the record's entity
    (``deal.created`` for a deal), else the manual start, else the first trigger."""
    if request.message is not None:
        return request.message
    about = [t for t in triggers if request.entity_type and t.startswith(f"{request.entity_type}.")]
    if about:
        return about[0]
    if manual_start or not triggers:
        return None
    return triggers[0]


def typed_snapshot(session: Session, entity: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Start data as if a record with these field ``values`` existed (no row is written).

    Values are validated like a form's (``ValidationFailed`` naming each bad field); fields not
    given are None, so conditions read them as empty rather than failing on a missing key.
    """
    cleaned = clean(entity, dict(values), partial=True, allow_readonly=True)
    record: dict[str, Any] = {"id": None, "created_by_id": None, "created_at": None,
                              "updated_at": None}
    record.update({f.name: None for f in SCHEMAS[entity]})
    record.update({k: json_value(v) for k, v in cleaned.items()})
    if entity == "deal":
        record["stage_semantics"] = None
        record["company"], record["contacts"] = None, []
    elif entity == "lead":
        record["company"], record["contact"] = None, None
    elif entity == "contact":
        record["company"] = None
        record["full_name"] = " ".join(str(record.get(k) or "") for k in
                                       ("first_name", "last_name")).strip()
    responsible = record.get("responsible_id")
    record["responsible"] = user_summary(session.get(User, responsible)) if isinstance(
        responsible, int) else None
    record["responsible_set_by"] = None
    return {entity: record, "event": event_data(None, entity, 0) | {"entity_id": None}}


def dry_run(session: Session, engine: Engine, bpmn_xml: str | bytes,
            dmn_xmls: Sequence[str | bytes], request: DryRunRequest) -> DryRunResult:
    """Run the drawing on ``request.data`` and roll back (see the module docstring).

    Invalid drawings come back with ``errors`` (nothing is run). Never commits; always rolls
    ``session`` back, also on failure.
    """
    calls: list[dict[str, Any]] = []
    dry = Engine(registry=simulated_registry(engine.registry, calls),
                 assigner=engine.assigner, clock=engine.clock, limits=engine.sandbox.limits,
                 retry_delays=(), conditions=engine.conditions)
    try:
        try:
            definition = dry.deploy(session, bpmn_xml, dmn_xmls, activate=False)
        except DefinitionInvalid as exc:
            return DryRunResult(errors=exc.errors)
        definition.active = True  # only inside this transaction, which is rolled back
        message = pick_message(definition.triggers, definition.manual_start, request)
        data = dict(request.data)
        if message is not None and isinstance(data.get("event"), dict):
            data["event"] = {**data["event"], "type": message}
        inst = dry.start(session, definition, StartRequest(
            data=data, entity_type=request.entity_type, entity_id=request.entity_id,
            message=message))
        session.flush()
        history = list(session.scalars(select(ProcessHistory).where(
            ProcessHistory.instance_id == inst.id).order_by(ProcessHistory.id)))
        tasks = list(session.scalars(select(ProcessTask).where(
            ProcessTask.instance_id == inst.id).order_by(ProcessTask.id)))
        result = DryRunResult(status=inst.status, service_calls=calls,
                              waiting=list(inst.waiting or []))
        result.path = [h.element_id for h in history if h.event == "left" and h.element_id]
        result.active = [t.element_id for t in tasks] + [
            w["element"] for w in result.waiting if w.get("element")]
        if inst.incident_element_id:
            result.incident = {"element_id": inst.incident_element_id,
                               "message": inst.incident_message}
            result.active.append(inst.incident_element_id)
        result.flows = taken_flows(definition.bpmn_xml, history)
        result.history = [{"event": h.event, "element_id": h.element_id, "message": h.message,
                           "changes": h.changes} for h in history]
        result.tasks = [{"element_id": t.element_id, "name": t.name,
                         "assignee": _user_json(session, t.assignee_id),
                         "candidates": [_user_json(session, c) for c in t.candidate_ids or []],
                         "note": t.assignment_note, "priority": t.priority,
                         "due_at": t.due_at.isoformat() if t.due_at else None,
                         "instructions": t.instructions, "form": t.form} for t in tasks]
        result.data = dry.instance_data(session, inst.id)
        return result
    finally:
        session.rollback()
