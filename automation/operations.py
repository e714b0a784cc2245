"""CRM service operations for BPMN service tasks (``marshrut:operation="crm.…"``).

Each operation validates its typed parameters (``automation.params``), then calls the one CRM
service function for the action as the process's system actor, so the audit trail says
"process <key> v<version>, instance <id>" and the write lands in the caller's transaction
together with the process state. It acts on the instance's entity (``ProcessContext``) and
returns the entity's fresh snapshot under its type (``{"deal": {...}}``) so that later
conditions and assignments (``responsible``) see the change.

Failures raise ``ServiceCallError``: bad parameters and CRM validation errors are not
retryable and name the faulty parameter/field in ``fields``.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from crm_models import services
from crm_models.activity import ActivityType
from crm_models.errors import CrmError
from crm_models.org import User
from crm_models.permissions import Actor
from crm_models.services import invoices as invoice_services
from crm_models.services import records
from engine.errors import ServiceCallError
from engine.ports import (
    AssignmentSpec,
    Clock,
    OperationSpec,
    ParamSpec,
    ProcessContext,
    SystemClock,
)

from .actors import parse_process_label, process_actor
from .assignment import (
    AssignmentFailed,
    CrmAssigner,
    department_head,
    find_department,
    find_role,
    find_user,
    role_members,
)
from .models import Notification
from .params import bad_params, coerce_params
from .snapshot import ENTITY_TYPES, UNKNOWN, SnapshotError, entity_snapshot

Handler = Callable[[Session, Actor, "Target", dict[str, Any]], dict[str, Any]]


class Target:
    """The entity an operation acts on: the instance's entity."""

    def __init__(self, ctx: ProcessContext, data: Mapping[str, Any]) -> None:
        entity, entity_id = ctx.entity_type, ctx.entity_id
        event = data.get("event")
        if (entity is None or entity_id is None) and isinstance(event, Mapping):
            entity, entity_id = event.get("entity_type"), event.get("entity_id")
        if entity not in ENTITY_TYPES or not isinstance(entity_id, int):
            raise ServiceCallError("this process instance is not bound to a CRM record",
                                   retryable=False)
        self.entity: str = entity
        self.id: int = entity_id
        self.ctx = ctx


class CrmOperation:
    """One service operation: an ``OperationSpec`` plus the function doing the work."""

    def __init__(self, spec: OperationSpec, handler: Handler) -> None:
        self.spec = spec
        self._handler = handler

    def __call__(self, session: Session, ctx: ProcessContext, params: Mapping[str, Any],
                 data: Mapping[str, Any]) -> dict[str, Any]:
        values = coerce_params(self.spec, params)
        target = Target(ctx, data)
        outer = session.info.get(records.RESPONSIBLE_WRITES)
        writes: list[tuple[str, int, str]] = []
        session.info[records.RESPONSIBLE_WRITES] = writes
        try:
            result = self._handler(session, process_actor(ctx), target, values)
            # The post-write snapshot: when this call changed the record's responsible, the
            # audit row it wrote (under the locked row) is the latest to say who set it.
            mine = [label for entity, id_, label in writes
                    if (entity, id_) == (target.entity, target.id)]
            set_by = parse_process_label(mine[-1]) if mine else None
            result.setdefault(target.entity, entity_snapshot(
                session, target.entity, target.id,
                set_by=(set_by.key if set_by is not None else None) if mine else UNKNOWN))
        except CrmError as exc:
            detail = "; ".join(f"{k}: {v}" for k, v in sorted(exc.fields.items()))
            message = f"{self.spec.name}: {detail or exc.message}"
            raise ServiceCallError(message, retryable=False, fields=exc.fields,
                                   error_code=exc.code) from exc
        except SnapshotError as exc:
            raise ServiceCallError(f"{self.spec.name}: {exc}", retryable=False) from exc
        finally:
            if outer is None:
                session.info.pop(records.RESPONSIBLE_WRITES, None)
            else:
                session.info[records.RESPONSIBLE_WRITES] = outer
        return result


def _user_param(session: Session, spec: OperationSpec, name: str, ref: Any) -> User:
    user = find_user(session, ref)
    if user is None or not user.active:
        raise bad_params(spec, {name: f"no active user {ref!r}"})
    return user


# --- the operations ---------------------------------------------------------------------------

ASSIGN = OperationSpec(
    "crm.assign_responsible", "Assign the responsible",
    (ParamSpec("user", "user", False, "the new responsible (e-mail or id)"),
     ParamSpec("role", "role", False, "a member of this role, in turn (round robin)"),
     ParamSpec("department_head", "department", False, "the head of this department")),
    "Make one user responsible for the record; give exactly one of the parameters.")


def _assign(clock: Clock) -> Handler:
    def run(session: Session, actor: Actor, t: Target, p: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("user", "role", "department_head") if k in p]
        if len(given) != 1:
            raise bad_params(ASSIGN, {k: "give exactly one of user, role, department_head"
                                      for k in (given or ["user"])})
        if "user" in p:
            user = _user_param(session, ASSIGN, "user", p["user"])
        elif "role" in p:
            if find_role(session, p["role"]) is None:
                raise bad_params(ASSIGN, {"role": f"no role {p['role']!r}"})
            try:
                chosen = CrmAssigner().resolve(session, AssignmentSpec("round_robin", p["role"],
                                                                       "skip"), {}, clock.now())
            except AssignmentFailed as exc:
                raise bad_params(ASSIGN, {"role": exc.message}) from exc
            user = session.get(User, chosen.assignee_id)
        else:
            dep = find_department(session, p["department_head"])
            if dep is None:
                raise bad_params(ASSIGN, {"department_head":
                                          f"no department {p['department_head']!r}"})
            head = department_head(session, dep)
            if head is None or not head.active:
                raise bad_params(ASSIGN, {"department_head": f"{dep.name!r} has no head"})
            user = head
        assert user is not None
        # Usually already in the session (the start data were read in this transaction).
        record = session.get(records.model_for(t.entity), t.id)
        if record is None:
            raise ServiceCallError(f"{ASSIGN.name}: no {t.entity} with id {t.id}",
                                   retryable=False)
        if record.responsible_id == user.id:
            # Nothing changes, so the service writes no audit; record that the process chose
            # this responsible anyway, or a lower-priority rule would see it as a person's
            # choice (``snapshot.responsible_set_by``) and override it.
            records.record_event(session, actor, entity=t.entity, entity_id=t.id,
                                 action="responsible_confirmed", event_type=None,
                                 changes={"responsible_id": [user.id, user.id]},
                                 responsible_id=user.id)
        else:
            services.assign_responsible(session, actor, t.entity, t.id, user.id)
        return {"assigned": {"user_id": user.id, "email": user.email,
                             "full_name": user.full_name}}
    return run


CHANGE_STAGE = OperationSpec(
    "crm.change_stage", "Move the deal to a stage",
    (ParamSpec("stage", "stage", True, "a stage code of the deal's pipeline, e.g. EXECUTING"),),
    "Deals only; emits deal.stage_changed.")


def _change_stage(session: Session, actor: Actor, t: Target, p: dict[str, Any]) -> dict[str, Any]:
    if t.entity != "deal":
        raise ServiceCallError("crm.change_stage works on deals only", retryable=False)
    services.change_deal_stage(session, actor, t.id, p["stage"])
    return {}


UPDATE_FIELDS = OperationSpec(
    "crm.update_fields", "Update fields",
    (ParamSpec("fields", "json", True, 'field values, e.g. {"probability": 50}'),),
    "Change fields of the record; each is validated as in the CRM's own forms.")


def _update_fields(session: Session, actor: Actor, t: Target, p: dict[str, Any]) -> dict[str, Any]:
    fields = p["fields"]
    if not isinstance(fields, dict) or not fields:
        raise bad_params(UPDATE_FIELDS, {"fields": "must be a non-empty JSON object"})
    records.update(session, actor, t.entity, t.id, fields)
    return {}


CREATE_ACTIVITY = OperationSpec(
    "crm.create_activity", "Plan an activity",
    (ParamSpec("subject", "string", True, "what to do"),
     ParamSpec("type", "string", False, "call, meeting, email or todo (default todo)",
               tuple(t.value for t in ActivityType)),
     ParamSpec("user", "user", False, "who does it (default: the responsible)"),
     ParamSpec("due", "duration", False, "due after this long, e.g. PT2H"),
     ParamSpec("description", "string", False)),
    "An activity on the record for a user, due after a duration.")


def _create_activity(clock: Clock) -> Handler:
    def run(session: Session, actor: Actor, t: Target, p: dict[str, Any]) -> dict[str, Any]:
        user_id = None
        if "user" in p:
            user_id = _user_param(session, CREATE_ACTIVITY, "user", p["user"]).id
        due = clock.now() + p["due"] if "due" in p else None
        act = services.add_activity(session, actor, entity_type=t.entity, entity_id=t.id,
                                    type=p.get("type", "todo"), subject=p["subject"],
                                    description=p.get("description", ""), due_at=due,
                                    responsible_id=user_id)
        return {"activity": {"id": act.id, "responsible_id": act.responsible_id,
                             "due_at": act.due_at.isoformat() if act.due_at else None}}
    return run


ADD_COMMENT = OperationSpec(
    "crm.add_comment", "Add a comment",
    (ParamSpec("text", "string", True, "the comment, shown in the record's timeline"),),
    "A comment signed by the process.")


def _add_comment(session: Session, actor: Actor, t: Target, p: dict[str, Any]) -> dict[str, Any]:
    comment = services.add_comment(session, actor, entity_type=t.entity, entity_id=t.id,
                                   text=p["text"])
    return {"comment": {"id": comment.id}}


NOTIFY = OperationSpec(
    "crm.notify", "Notify users",
    (ParamSpec("title", "string", True, "the notification's headline"),
     ParamSpec("text", "string", False),
     ParamSpec("user", "user", False, "one user (e-mail or id)"),
     ParamSpec("role", "role", False, "every active member of a role"),
     ParamSpec("responsible", "boolean", False, "the record's responsible")),
    "A notification about the record for users; give at least one recipient.")


def _notify(session: Session, actor: Actor, t: Target, p: dict[str, Any]) -> dict[str, Any]:
    if not ({"user", "role"} & p.keys() or p.get("responsible")):
        raise bad_params(NOTIFY, {"user": "give user, role or responsible"})
    record = services.get_record(session, actor, t.entity, t.id)
    recipients: dict[int, User] = {}
    if "user" in p:
        u = _user_param(session, NOTIFY, "user", p["user"])
        recipients[u.id] = u
    if "role" in p:
        role = find_role(session, p["role"])
        if role is None:
            raise bad_params(NOTIFY, {"role": f"no role {p['role']!r}"})
        recipients.update((u.id, u) for u in role_members(session, role))
    if p.get("responsible"):
        recipients[record.responsible_id] = record.responsible
    if len(p["title"]) > 255:
        raise bad_params(NOTIFY, {"title": "must be at most 255 characters"})
    for uid in sorted(recipients):
        session.add(Notification(user_id=uid, title=p["title"], text=p.get("text", ""),
                                 entity_type=t.entity, entity_id=t.id, source_label=actor.label))
    session.flush()
    return {"notified": sorted(recipients)}


CONVERT_LEAD = OperationSpec(
    "crm.convert_lead", "Convert the lead",
    (ParamSpec("stage", "stage", False, "the new deal's stage"),
     ParamSpec("pipeline_id", "integer", False, "the new deal's pipeline")),
    "Turn the lead into a contact, a company and a deal (leads only).")


def _convert_lead(session: Session, actor: Actor, t: Target, p: dict[str, Any]) -> dict[str, Any]:
    if t.entity != "lead":
        raise ServiceCallError("crm.convert_lead works on leads only", retryable=False)
    conv = services.convert_lead(session, actor, t.id, deal=dict(p))
    return {"conversion": {"deal_id": conv.deal.id,
                           "contact_id": conv.contact.id if conv.contact else None,
                           "company_id": conv.company.id if conv.company else None}}


CREATE_INVOICE = OperationSpec(
    "crm.create_invoice", "Make an invoice from the deal",
    (ParamSpec("due_days", "integer", False, "days to pay, from today"),
     ParamSpec("buyer_inn", "string", False, "the buyer's INN (10 or 12 digits)"),
     ParamSpec("buyer_kpp", "string", False, "the buyer's KPP (9 digits)")),
    "Deals only: the deal's product rows, its buyer, our requisites, the next number; "
    "emits invoice.created. The result holds invoice.id, invoice.number, invoice.total.")


def _create_invoice(clock: Clock) -> Handler:
    def run(session: Session, actor: Actor, t: Target, p: dict[str, Any]) -> dict[str, Any]:
        if t.entity != "deal":
            raise ServiceCallError("crm.create_invoice works on deals only", retryable=False)
        today = clock.now().date()
        days = p.get("due_days")
        if days is not None and not 0 <= days <= 3650:
            raise ServiceCallError("crm.create_invoice: due_days must be 0 to 3650",
                                   retryable=False, fields={"due_days": "must be 0 to 3650"})
        inv = invoice_services.create_invoice(
            session, actor, deal_id=t.id, today=today,
            due_on=today + dt.timedelta(days=days) if days is not None else None,
            buyer_inn=p.get("buyer_inn") or "", buyer_kpp=p.get("buyer_kpp") or "")
        return {"invoice": {"id": inv.id, "number": inv.number, "total": str(inv.total),
                            "stage": inv.stage}}

    return run


SET_INVOICE_STAGE = OperationSpec(
    "crm.set_invoice_stage", "Move an invoice to a stage",
    (ParamSpec("stage", "string", True, "draft, sent, paid, overdue or cancelled",
               choices=("draft", "sent", "paid", "overdue", "cancelled")),
     ParamSpec("invoice_id", "integer", False, "default: the deal's latest invoice")),
    "Deals only; emits invoice.stage_changed (and invoice.paid).")


def _set_invoice_stage(session: Session, actor: Actor, t: Target,
                       p: dict[str, Any]) -> dict[str, Any]:
    if t.entity != "deal":
        raise ServiceCallError("crm.set_invoice_stage works on deals only", retryable=False)
    invoice_id = p.get("invoice_id")
    if invoice_id is None:
        latest = invoice_services.list_invoices(session, actor, deal_id=t.id, per_page=1).items
        if not latest:
            raise ServiceCallError("crm.set_invoice_stage: the deal has no invoice",
                                   retryable=False, fields={"invoice_id": "the deal has none"})
        invoice_id = latest[0].id
    inv = invoice_services.change_invoice_stage(session, actor, invoice_id, p["stage"])
    if inv.deal_id != t.id:
        raise ServiceCallError("crm.set_invoice_stage: the invoice is not this deal's",
                               retryable=False, fields={"invoice_id": "is not this deal's"})
    return {"invoice": {"id": inv.id, "number": inv.number, "total": str(inv.total),
                        "stage": inv.stage}}


def crm_operations(clock: Clock | None = None) -> list[CrmOperation]:
    """Every CRM operation, bound to ``clock`` (for due dates and rotations)."""
    clock = clock or SystemClock()
    return [
        CrmOperation(ASSIGN, _assign(clock)),
        CrmOperation(CHANGE_STAGE, _change_stage),
        CrmOperation(UPDATE_FIELDS, _update_fields),
        CrmOperation(CREATE_ACTIVITY, _create_activity(clock)),
        CrmOperation(ADD_COMMENT, _add_comment),
        CrmOperation(NOTIFY, _notify),
        CrmOperation(CONVERT_LEAD, _convert_lead),
        CrmOperation(CREATE_INVOICE, _create_invoice(clock)),
        CrmOperation(SET_INVOICE_STAGE, _set_invoice_stage),
    ]


def register_crm_operations(registry: Any, clock: Clock | None = None) -> Iterable[str]:
    """Register every CRM operation in the engine's ``ServiceRegistry`` (which refuses
    duplicates); returns their names."""
    names = []
    for op in crm_operations(clock):
        registry.register(op)
        names.append(op.spec.name)
    return names
