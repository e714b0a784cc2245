"""Named service functions for leads, deals, contacts and companies.

Each is the one way to do its action; see ``records`` for what every write guarantees.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..entities import Company, Contact, Deal, Lead
from ..errors import ValidationFailed
from ..permissions import Actor
from . import records
from .records import Page


# Leads
def create_lead(session: Session, actor: Actor, **fields: Any) -> Lead:
    return records.create(session, actor, "lead", fields)


def update_lead(session: Session, actor: Actor, lead_id: int, **fields: Any) -> Lead:
    return records.update(session, actor, "lead", lead_id, fields)


def delete_lead(session: Session, actor: Actor, lead_id: int) -> None:
    records.delete(session, actor, "lead", lead_id)


def get_lead(session: Session, actor: Actor, lead_id: int) -> Lead:
    return records.load(session, actor, "lead", lead_id)


def list_leads(session: Session, actor: Actor, **kw: Any) -> Page:
    return records.list_records(session, actor, "lead", **kw)


# Deals
def create_deal(session: Session, actor: Actor, **fields: Any) -> Deal:
    return records.create(session, actor, "deal", fields)


def update_deal(session: Session, actor: Actor, deal_id: int, **fields: Any) -> Deal:
    return records.update(session, actor, "deal", deal_id, fields)


def delete_deal(session: Session, actor: Actor, deal_id: int) -> None:
    records.delete(session, actor, "deal", deal_id)


def get_deal(session: Session, actor: Actor, deal_id: int) -> Deal:
    return records.load(session, actor, "deal", deal_id)


def list_deals(session: Session, actor: Actor, **kw: Any) -> Page:
    return records.list_records(session, actor, "deal", **kw)


def change_deal_stage(session: Session, actor: Actor, deal_id: int, stage: str) -> Deal:
    """Move a deal to ``stage`` (a code of its pipeline); emits ``deal.stage_changed``."""
    if not stage:
        raise ValidationFailed({"stage": "is required"})
    return records.update(session, actor, "deal", deal_id, {"stage": stage})


# Contacts
def _has_name(value: Any) -> bool:
    # Non-strings count as given: clean() then names the field's type error.
    return not isinstance(value, str) or bool(value.strip())


def create_contact(session: Session, actor: Actor, **fields: Any) -> Contact:
    """A contact needs a first or a last name (blank ones do not count)."""
    if not any(name in fields and fields[name] is not None and _has_name(fields[name])
               for name in ("first_name", "last_name")):
        raise ValidationFailed({"last_name": "a contact needs a first or last name"})
    return records.create(session, actor, "contact", fields)


def update_contact(session: Session, actor: Actor, contact_id: int, **fields: Any) -> Contact:
    """Change a contact; it may not lose both its first and its last name."""
    if "first_name" in fields or "last_name" in fields:
        contact = records.load(session, actor, "contact", contact_id)
        names = [fields.get(n, getattr(contact, n)) for n in ("first_name", "last_name")]
        if not any(v is not None and _has_name(v) for v in names):
            raise ValidationFailed({"last_name": "a contact needs a first or last name"})
    return records.update(session, actor, "contact", contact_id, fields)


def delete_contact(session: Session, actor: Actor, contact_id: int) -> None:
    records.delete(session, actor, "contact", contact_id)


def get_contact(session: Session, actor: Actor, contact_id: int) -> Contact:
    return records.load(session, actor, "contact", contact_id)


def list_contacts(session: Session, actor: Actor, **kw: Any) -> Page:
    return records.list_records(session, actor, "contact", **kw)


# Companies
def create_company(session: Session, actor: Actor, **fields: Any) -> Company:
    return records.create(session, actor, "company", fields)


def update_company(session: Session, actor: Actor, company_id: int, **fields: Any) -> Company:
    return records.update(session, actor, "company", company_id, fields)


def delete_company(session: Session, actor: Actor, company_id: int) -> None:
    records.delete(session, actor, "company", company_id)


def get_company(session: Session, actor: Actor, company_id: int) -> Company:
    return records.load(session, actor, "company", company_id)


def list_companies(session: Session, actor: Actor, **kw: Any) -> Page:
    return records.list_records(session, actor, "company", **kw)


# Any entity
def assign_responsible(session: Session, actor: Actor, entity: str, record_id: int,
                       user_id: int) -> Any:
    """Make ``user_id`` responsible for the record; emits ``<entity>.updated``."""
    return records.update(session, actor, entity, record_id, {"responsible_id": user_id})


def get_record(session: Session, actor: Actor, entity: str, record_id: int) -> Any:
    return records.load(session, actor, entity, record_id)
