"""Start data for a process: a JSON snapshot of a CRM entity and of the event that woke it.

Shape (for a deal; leads, contacts and companies alike)::

    {"deal": {...crm_models.serialize.to_dict(deal)...,
              "company": {"id", "title", ...} | None,
              "contacts": [{"id", "full_name", ...}],
              "responsible": {"id", "email", "full_name", "department", "department_id"},
              "responsible_set_by": "key_client_routing" | None},
     "event": {"type": "deal.created", "id": 17, "changed": {...}, "actor": "...",
               "entity_type": "deal", "entity_id": 5}}

Contract: JSON values only (it is stored in the instance state). Money fields are exact decimal
strings (``"2500000.00"``), as ``to_dict`` writes them: the engine's sandbox reads a decimal
string as a number when it meets a number or another decimal string in a comparison
(``engine.sandbox_lib``), so ``deal.amount > 1000000`` and ``deal.amount > threshold`` (a
``decimal`` process variable) compare numerically and no amount is rounded through a float.
Dates are ISO strings.

``responsible_set_by`` is the key of the process that last set (or confirmed) the responsible,
or None when a person set it: it lets a lower-priority rule leave alone a responsible that a
higher-priority rule has already chosen.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.util import identity_key

from crm_models.activity import AuditEvent
from crm_models.entities import ENTITY_MODELS, Company, Contact, Deal, Lead
from crm_models.org import User
from crm_models.serialize import to_dict

from .actors import parse_process_label

ENTITY_TYPES = tuple(ENTITY_MODELS)
_KEEP = "marshrut_snapshot_records"
#: How far back the audit trail is searched for who set the responsible.
_AUDIT_LOOKBACK = 50


#: Load an entity with everything its snapshot reads in one round trip (plus contacts).
_EAGER: dict[str, tuple[Any, ...]] = {
    "deal": (joinedload(Deal.stage), joinedload(Deal.company),
             joinedload(Deal.responsible).joinedload(User.department),
             joinedload(Deal.contacts)),
    "lead": (joinedload(Lead.company), joinedload(Lead.contact),
             joinedload(Lead.responsible).joinedload(User.department)),
    "contact": (joinedload(Contact.company),
                joinedload(Contact.responsible).joinedload(User.department)),
    "company": (joinedload(Company.responsible).joinedload(User.department),),
}


class EventLike(Protocol):
    """An outbox event (``OutboxEvent`` or the dispatcher's read-once copy of one)."""

    id: int
    event_type: str
    payload: Any
    actor_user_id: int | None
    actor_label: str


class SnapshotError(LookupError):
    """The entity does not exist (any more)."""


def user_summary(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    dep = user.department
    return {"id": user.id, "email": user.email, "full_name": user.full_name,
            "department": dep.name if dep is not None else None,
            "department_id": user.department_id}


def company_summary(company: Company | None) -> dict[str, Any] | None:
    if company is None:
        return None
    return {"id": company.id, "title": company.title, "industry": company.industry,
            "address": company.address, "phones": list(company.phones or []),
            "emails": list(company.emails or []), "responsible_id": company.responsible_id}


def contact_summary(contact: Contact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {"id": contact.id, "full_name": contact.full_name, "first_name": contact.first_name,
            "last_name": contact.last_name, "position": contact.position,
            "company_id": contact.company_id, "phones": list(contact.phones or []),
            "emails": list(contact.emails or [])}


_AUDIT = AuditEvent.__table__
#: On the table: a plain Core select, run on the session's connection (audit rows are written
#: at once with Core too, so there is nothing for an autoflush to add).
_AUDIT_TRAIL = (
    select(_AUDIT.c.actor_label, _AUDIT.c.changes)
    .where(_AUDIT.c.entity_type == bindparam("entity"),
           _AUDIT.c.entity_id == bindparam("entity_id"))
    .order_by(_AUDIT.c.id.desc()).limit(_AUDIT_LOOKBACK))
#: Per entity type, the entity with everything its snapshot reads (built once, so its cache
#: key is computed once too).
_LOAD = {entity: select(model).options(*_EAGER.get(entity, ()))
         .where(model.id == bindparam("entity_id")) for entity, model in ENTITY_MODELS.items()}


def _has_responsible(changes: Any, dialect: str) -> Any:
    """SQL for: the audit row's ``changes`` is an object with a ``responsible_id`` key (as
    ``responsible_set_by`` asks in Python); None on a database without a form of it here."""
    if dialect == "sqlite":
        return func.json_type(changes, "$.responsible_id").is_not(None)
    if dialect == "postgresql":
        as_jsonb = cast(changes, JSONB)
        return and_(func.jsonb_typeof(as_jsonb) == "object", as_jsonb.has_key("responsible_id"))
    return None


def _load_with_set_by(entity: str, dialect: str) -> Any:
    """``_LOAD[entity]`` plus, as one more column, the actor label of the newest of the
    record's last ``_AUDIT_LOOKBACK`` audit rows that changed its responsible (NULL if
    none): what ``responsible_set_by`` reads with a statement of its own, in the same round
    trip as the record."""
    trail = (select(_AUDIT.c.id, _AUDIT.c.actor_label, _AUDIT.c.changes)
             .where(_AUDIT.c.entity_type == entity,
                    _AUDIT.c.entity_id == bindparam("entity_id"))
             .order_by(_AUDIT.c.id.desc()).limit(_AUDIT_LOOKBACK).subquery())
    has = _has_responsible(trail.c.changes, dialect)
    if has is None:
        return None
    label = (select(trail.c.actor_label).where(has)
             .order_by(trail.c.id.desc()).limit(1).scalar_subquery())
    return _LOAD[entity].add_columns(label)


_LOAD_WITH_SET_BY: dict[tuple[str, str], Any] = {}


def responsible_set_by(session: Session, entity: str, entity_id: int) -> str | None:
    """The key of the process whose write last changed the record's responsible, else None."""
    rows = session.connection(bind_arguments={"mapper": AuditEvent}).execute(
        _AUDIT_TRAIL, {"entity": entity, "entity_id": entity_id})
    for label, changes in rows:
        if isinstance(changes, dict) and "responsible_id" in changes:
            parsed = parse_process_label(label)
            return parsed.key if parsed is not None else None
    return None


#: ``entity_snapshot(set_by=UNKNOWN)``: read who set the responsible from the audit trail.
UNKNOWN: Any = object()


def preload(session: Session, refs: Iterable[tuple[str, int]]) -> int:
    """Read the records of many events at once (one statement per entity type and 500 ids,
    with everything ``entity_snapshot`` reads) and keep them alive in the session, so the
    snapshots of a bulk dispatch find them in its identity map instead of reading each.
    A record the session holds already is left as it is. Returns how many were read."""
    wanted: dict[str, set[int]] = {}
    for entity, entity_id in refs:
        model = ENTITY_MODELS.get(entity)
        if model is not None and isinstance(entity_id, int) and session.identity_map.get(
                identity_key(model, entity_id)) is None:
            wanted.setdefault(entity, set()).add(entity_id)
    kept = session.info.setdefault(_KEEP, [])
    read = 0
    for entity, ids in wanted.items():
        model = ENTITY_MODELS[entity]
        ordered = sorted(ids)
        for i in range(0, len(ordered), 500):
            records = session.execute(
                select(model).options(*_EAGER.get(entity, ()))
                .where(model.id.in_(ordered[i:i + 500]))).unique().scalars().all()
            kept.extend(records)
            read += len(records)
    return read


def entity_snapshot(session: Session, entity: str, entity_id: int, *,
                    set_by: str | None = UNKNOWN) -> dict[str, Any]:
    """The entity's fields and its related records as JSON values; raises SnapshotError.
    ``set_by``: ``responsible_set_by`` when the caller knows it (it has just written the
    audit row that decides it), else it is read from the audit trail."""
    model = ENTITY_MODELS.get(entity)
    if model is None:
        raise SnapshotError(f"unknown entity type {entity!r}")
    # A record this session holds already (the one a service task has just written) is used
    # as it is; expired attributes reload on access.
    record = session.identity_map.get(identity_key(model, entity_id))
    if record is None:
        record, set_by = _load(session, entity, entity_id, set_by)
    if record is None:
        raise SnapshotError(f"no {entity} with id {entity_id}")
    # The session's identity map holds clean objects weakly: keep the record (and what it
    # loaded) alive while the session lives, so the service tasks and assignments of this
    # unit of work find it there instead of reading it again.
    keep = session.info.setdefault(_KEEP, [])
    keep.append(record)
    data = to_dict(record)
    responsible = record.responsible
    # The responsible too: a service task may hand the record to someone else (the record no
    # longer refers to this user then), and the notification of the reassignment checks that
    # the previous responsible is active in the session first.
    if responsible is not None:
        keep.append(responsible)
    data["responsible"] = user_summary(responsible)
    data["responsible_set_by"] = (responsible_set_by(session, entity, entity_id)
                                  if set_by is UNKNOWN else set_by)
    if isinstance(record, Deal):
        data["company"] = company_summary(record.company)
        data["contacts"] = [contact_summary(c) for c in record.contacts]
    elif isinstance(record, Lead):
        data["company"] = company_summary(record.company)
        data["contact"] = contact_summary(record.contact)
    elif isinstance(record, Contact):
        data["company"] = company_summary(record.company)
    return data


def _load(session: Session, entity: str, entity_id: int, set_by: str | None
          ) -> tuple[Any, str | None]:
    """The record (None if there is none) and who set its responsible — read along with
    the record when the caller does not know it (``set_by`` is ``UNKNOWN``)."""
    if set_by is UNKNOWN:
        dialect = session.get_bind().dialect.name
        stmt = _LOAD_WITH_SET_BY.get((entity, dialect))
        if stmt is None and (entity, dialect) not in _LOAD_WITH_SET_BY:
            stmt = _LOAD_WITH_SET_BY[(entity, dialect)] = _load_with_set_by(entity, dialect)
        if stmt is not None:
            row = session.execute(stmt, {"entity_id": entity_id}).unique().one_or_none()
            if row is None:
                return None, set_by
            record, label = row
            parsed = parse_process_label(label)
            return record, parsed.key if parsed is not None else None
    return session.execute(_LOAD[entity], {"entity_id": entity_id}
                           ).unique().scalar_one_or_none(), set_by


def event_data(event: EventLike | None, entity: str, entity_id: int) -> dict[str, Any]:
    """The ``event`` part of the start data; a manual start has type "manual" and no id."""
    if event is None:
        return {"type": "manual", "id": None, "changed": {}, "actor": None,
                "entity_type": entity, "entity_id": entity_id}
    payload = event.payload if isinstance(event.payload, dict) else {}
    changed = payload.get("changed")
    out = {"type": event.event_type, "id": event.id,
           "changed": changed if isinstance(changed, dict) else {},
           "actor": event.actor_label, "actor_user_id": event.actor_user_id,
           "entity_type": entity, "entity_id": entity_id}
    if isinstance(payload.get("email"), dict):  # email.received / sent / queued / failed
        out["email"] = payload["email"]
    return out


def start_data(session: Session, entity: str, entity_id: int,
               event: EventLike | None = None) -> dict[str, Any]:
    """``{entity: snapshot, "event": {...}}``, built fresh from the database."""
    return {entity: entity_snapshot(session, entity, entity_id),
            "event": event_data(event, entity, entity_id)}
