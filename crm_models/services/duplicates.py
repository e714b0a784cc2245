"""Duplicates of contacts and companies: finding them, and merging two into one.

Finding uses the normalised keys of ``crm_models.dedup`` and shows only records the actor may
read. Merging is an admin's act: everything that pointed at the merged-away record (links
from contacts, deals, leads and invoices, the deal contact lists, the timeline — comments,
activities, history — process instances, tasks and notifications) is moved to the survivor,
empty fields of the survivor are filled from it, phones and e-mails are joined, and then it is
deleted. The audit trail of the survivor says who merged which record.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, inspect, select, table, update
from sqlalchemy.orm import Session

from .. import dedup
from ..activity import Activity, AuditEvent, Comment
from ..entities import ENTITY_MODELS, deal_contact
from ..errors import PermissionDenied, ValidationFailed
from ..fields import SCHEMAS
from ..permissions import Actor
from . import records


@dataclass
class Duplicate:
    record: Any
    kinds: set[str]  # phone, email, inn


def candidates(session: Session, actor: Actor, entity: str, *, phones: Any = (),
               emails: Any = (), inn: Any = None, exclude: int | None = None,
               limit: int = 20) -> list[Duplicate]:
    """Readable records of ``entity`` sharing a phone, e-mail or ИНН with the given ones."""
    keys = dedup.keys_of(phones=phones, emails=emails, inn=inn)
    found = dedup.matching_ids(session, entity, keys, exclude=exclude)
    if not found or actor.level(entity, "read") == 0:
        return []
    model = ENTITY_MODELS[entity]
    rows = session.scalars(select(model).where(model.id.in_(sorted(found)[:500]),
                                               actor.scope(model, "read"))
                           .order_by(model.id).limit(limit))
    return [Duplicate(r, found[r.id]) for r in rows]


def duplicates_of(session: Session, actor: Actor, entity: str, record_id: int) -> list[Duplicate]:
    """The "Дубликаты" check of a card: other records sharing a key with this one."""
    if entity not in dedup.DEDUP_ENTITIES:
        raise ValidationFailed({"entity": "only contacts and companies have duplicates"})
    record = records.load(session, actor, entity, record_id)
    return candidates(session, actor, entity, phones=record.phones, emails=record.emails,
                      inn=getattr(record, "inn", None), exclude=record.id)


def _t(name: str, *cols: str) -> Any:
    return table(name, *(column(c) for c in cols))


#: (table, column) holding a company's / a contact's id: they follow the survivor.
_LINKS = {
    "company": (("contact", "company_id"), ("deal", "company_id"), ("lead", "company_id"),
                ("invoice", "company_id")),
    "contact": (("lead", "contact_id"), ("invoice", "contact_id"),
                ("store_order", "contact_id")),
}
#: Tables hanging on (entity_type, entity_id) without a foreign key.
_BY_ENTITY = ("process_instance", "process_task", "notification")


def _merged_fields(entity: str, survivor: Any, victim: Any) -> dict[str, Any]:
    """Fields of the survivor to change: empty ones take the victim's value; channels join."""
    out: dict[str, Any] = {}
    for f in SCHEMAS[entity]:
        if f.readonly or f.kind in ("user", "bool", "refs"):
            continue
        mine, theirs = getattr(survivor, f.name), getattr(victim, f.name)
        if f.kind in ("phones", "emails"):
            seen = dedup.keys_of(**{f.name: mine or []})
            extra = [c for c in theirs or [] if c not in (mine or [])
                     and not dedup.keys_of(**{f.name: [c]}) & seen]
            if extra:
                out[f.name] = list(mine or []) + extra
        elif f.kind == "text" and mine and theirs and theirs not in mine:
            out[f.name] = f"{mine}\n\n{theirs}"[:f.max_length]
        elif mine in (None, "") and theirs not in (None, ""):
            out[f.name] = theirs
    return out


def merge(session: Session, actor: Actor, entity: str, survivor_id: int,
          victim_id: int) -> Any:
    """Merge record ``victim_id`` into ``survivor_id`` (see the module docstring); returns
    the survivor. Admins only; both records must be ones the admin may update and delete."""
    if entity not in dedup.DEDUP_ENTITIES:
        raise ValidationFailed({"entity": "only contacts and companies can be merged"})
    if not actor.is_admin:
        raise PermissionDenied("Merging records needs the right 'manage_settings'")
    if survivor_id == victim_id:
        raise ValidationFailed({"victim_id": "a record cannot be merged with itself"})
    survivor = records.load(session, actor, entity, survivor_id, "update", lock=True)
    victim = records.load(session, actor, entity, victim_id, "delete", lock=True)
    fields = _merged_fields(entity, survivor, victim)
    moved: dict[str, int] = {}
    with session.begin_nested():
        if fields:
            records.update(session, actor, entity, survivor.id, fields)
        for name, col in _LINKS[entity]:
            t = _t(name, col)
            moved[f"{name}.{col}"] = session.execute(
                update(t).where(t.c[col] == victim.id).values({col: survivor.id})).rowcount
        if entity == "contact":
            _move_deal_contacts(session, survivor.id, victim.id, moved)
        for model in (Comment, Activity, AuditEvent):
            moved[model.__tablename__] = session.execute(
                update(model).where(model.entity_type == entity, model.entity_id == victim.id)
                .values(entity_id=survivor.id)).rowcount
        existing = inspect(session.connection())
        for name in _BY_ENTITY:
            if not existing.has_table(name):
                continue  # a database of the CRM alone, without the engine's tables
            t = _t(name, "entity_type", "entity_id")
            moved[name] = session.execute(
                update(t).where(t.c.entity_type == entity, t.c.entity_id == victim.id)
                .values(entity_id=survivor.id)).rowcount
        session.expire_all()
        records.record_event(
            session, actor, entity=entity, entity_id=survivor.id, action="merged",
            event_type=f"{entity}.merged",
            changes={"merged_id": [victim.id, survivor.id]},
            payload={"merged_id": victim.id, "moved": {k: v for k, v in moved.items() if v}},
            responsible_id=survivor.responsible_id)
        records.delete(session, actor, entity, victim.id)
    session.flush()
    return records.load(session, actor, entity, survivor.id)


def _move_deal_contacts(session: Session, survivor_id: int, victim_id: int,
                        moved: dict[str, int]) -> None:
    both = select(deal_contact.c.deal_id).where(deal_contact.c.contact_id == survivor_id)
    # A deal listing both keeps the survivor once.
    session.execute(deal_contact.delete().where(deal_contact.c.contact_id == victim_id,
                                                deal_contact.c.deal_id.in_(both)))
    moved["deal_contact"] = session.execute(
        update(deal_contact).where(deal_contact.c.contact_id == victim_id)
        .values(contact_id=survivor_id)).rowcount


__all__ = ["Duplicate", "candidates", "duplicates_of", "merge"]
