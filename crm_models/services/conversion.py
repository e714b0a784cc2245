"""Lead conversion: one call turns a lead into a contact, a company and a deal."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..catalog import ProductRow
from ..entities import Company, Contact, Deal, Lead, LeadStatus
from ..errors import NotFound, PermissionDenied, ValidationFailed
from ..permissions import Actor
from . import duplicates, product_rows, records


@dataclass
class Conversion:
    lead: Lead
    contact: Contact | None
    company: Company | None
    deal: Deal


def conversion_preview(session: Session, actor: Actor, lead_id: int) -> dict[str, Any]:
    """What ``convert_lead`` would create, without writing anything.

    Needs the same rights as the conversion itself (update on the lead, add on every entity
    it would create), so a page never offers a conversion that would then be refused.
    """
    lead = records.load(session, actor, "lead", lead_id, "update")
    _check_convertible(lead)
    person = bool(lead.first_name or lead.last_name)
    preview = {
        "contact": _contact_fields(lead) if person else None,
        "company": _company_fields(lead) if lead.company_title and not lead.company_id else None,
        "existing_company_id": lead.company_id,
        "deal": _deal_fields(lead, {}),
        # Records already there with the lead's phone, e-mail (or, for a company, its
        # name): the page offers them instead of making a second «Вектор».
        "matches": {
            "contact": [_match(d) for d in duplicates.candidates(
                session, actor, "contact", phones=lead.phones, emails=lead.emails)]
            if person else [],
            "company": [_match(d) for d in _company_matches(session, actor, lead)]
            if lead.company_title and not lead.company_id else [],
        },
    }
    for entity in ("contact", "company", "deal"):
        if preview[entity] is not None and not actor.allows_record(
                entity, "add", lead.responsible_id, lead.opened):
            raise PermissionDenied(f"You may not add a {entity} for this lead's responsible user")
    return preview


def _match(found: duplicates.Duplicate) -> dict[str, Any]:
    return {"id": found.record.id, "title": found.record.title, "by": sorted(found.kinds)}


def _company_matches(session: Session, actor: Actor, lead: Lead) -> list[Any]:
    """Companies sharing the lead's channels (when no person carries them) or its name."""
    found = [] if (lead.first_name or lead.last_name) else duplicates.candidates(
        session, actor, "company", phones=lead.phones, emails=lead.emails)
    ids = {d.record.id for d in found}
    title = lead.company_title.strip().casefold()
    if title and actor.level("company", "read"):
        for company in session.scalars(
                select(Company).where(func.lower(Company.title) == title,
                                      actor.scope(Company, "read")).limit(10)):
            if company.id not in ids:
                found.append(duplicates.Duplicate(company, {"title"}))
    return found


def _check_convertible(lead: Lead) -> None:
    if lead.status == LeadStatus.CONVERTED:
        raise ValidationFailed({"status": "this lead is already converted"})
    if lead.status == LeadStatus.JUNK:
        raise ValidationFailed({"status": "a junk lead cannot be converted"})


def _contact_fields(lead: Lead) -> dict[str, Any]:
    return {"first_name": lead.first_name, "last_name": lead.last_name,
            "phones": list(lead.phones or []), "emails": list(lead.emails or []),
            "responsible_id": lead.responsible_id, "opened": lead.opened}


def _company_fields(lead: Lead) -> dict[str, Any]:
    return {"title": lead.company_title, "responsible_id": lead.responsible_id,
            "opened": lead.opened,
            # A company gets the lead's channels only when there is no person to carry them.
            **({} if (lead.first_name or lead.last_name) else
               {"phones": list(lead.phones or []), "emails": list(lead.emails or [])})}


def _deal_fields(lead: Lead, overrides: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": lead.title, "currency": lead.currency, "responsible_id": lead.responsible_id,
        "opened": lead.opened, "comments": lead.comments,
    }
    if lead.amount is not None:
        fields["amount"] = str(lead.amount)
    if lead.source:
        fields["source"] = lead.source
    fields.update(overrides)
    return fields


def convert_lead(session: Session, actor: Actor, lead_id: int, *,
                 deal: dict[str, Any] | None = None, company_id: int | None = None,
                 contact_id: int | None = None) -> Conversion:
    """Create the contact (if the lead names a person), the company (if it names one and is not
    linked to one already) and the deal, carrying names, phones, e-mails, amount, currency,
    source and responsible; mark the lead CONVERTED with links both ways.

    ``deal`` may override deal fields (e.g. ``pipeline_id``, ``stage``, ``title``);
    ``company_id``/``contact_id`` name an existing company/contact (one the actor may read,
    e.g. a duplicate ``conversion_preview`` found) to link instead of creating one.
    Rights: update on the lead, add on each created entity. All or nothing: a failing step
    (say, a bad deal override) undoes the company and contact already made, even when the
    caller goes on and commits its transaction.
    """
    if deal is not None and not isinstance(deal, dict):
        raise ValidationFailed({"deal": "must be an object of deal fields"})
    lead = records.load(session, actor, "lead", lead_id, "update", lock=True)
    _check_convertible(lead)
    existing: dict[str, Any] = {}
    for entity, given in (("company", company_id), ("contact", contact_id)):
        if given is not None:
            try:
                existing[entity] = records.load(session, actor, entity, given)
            except NotFound:
                raise ValidationFailed({f"{entity}_id": f"no {entity} with id {given}"}) \
                    from None
    with session.begin_nested():
        return _convert(session, actor, lead, deal or {}, existing)


def _convert(session: Session, actor: Actor, lead: Lead, deal: dict[str, Any],
             existing: dict[str, Any]) -> Conversion:
    extra = {"lead_id": lead.id}
    company: Company | None = None
    if lead.company_id:
        company = session.get(Company, lead.company_id)
    elif existing.get("company") is not None:
        company = existing["company"]
    elif lead.company_title:
        company = records.create(session, actor, "company", _company_fields(lead), extra=extra)
    # The lead's own company and the records made here may be linked whether or not the
    # actor may read them; a ``deal`` override's links are checked like any other.
    vouched = {"company": {company.id} if company else set(), "contact": set()}
    contact: Contact | None = existing.get("contact")
    if contact is not None:
        vouched["contact"].add(contact.id)
    elif lead.first_name or lead.last_name:
        cf = _contact_fields(lead)
        if company is not None:
            cf["company_id"] = company.id
        contact = records.create(session, actor, "contact", cf, extra=extra, vouched=vouched)
        vouched["contact"].add(contact.id)
    df = _deal_fields(lead, deal)
    if company is not None:
        df.setdefault("company_id", company.id)
    if contact is not None:
        df.setdefault("contact_ids", [contact.id])
    new_deal = records.create(session, actor, "deal", df, extra=extra, vouched=vouched)
    _copy_product_rows(session, lead, new_deal)
    links = {"status": LeadStatus.CONVERTED.value, "deal_id": new_deal.id,
             "contact_id": contact.id if contact else None,
             "company_id": company.id if company else None}
    records.update(session, actor, "lead", lead.id, links, allow_readonly=True)
    records.record_event(session, actor, entity="lead", entity_id=lead.id, action="converted",
                         event_type="lead.converted", changes={},
                         payload={"deal_id": new_deal.id, "contact_id": links["contact_id"],
                                  "company_id": links["company_id"]},
                         responsible_id=lead.responsible_id)
    return Conversion(lead=lead, contact=contact, company=company, deal=new_deal)


def _copy_product_rows(session: Session, lead: Lead, deal: Deal) -> None:
    """The lead's product rows become the new deal's (part of its creation: no event of
    their own), and so does the choice whether the amount follows them."""
    rows = product_rows.rows_of(session, "lead", lead.id)
    if not rows or deal.currency != lead.currency:
        return
    session.add_all(ProductRow(
        entity_type="deal", entity_id=deal.id, sort=r.sort, product_id=r.product_id,
        name=r.name, quantity=r.quantity, unit=r.unit, price=r.price,
        discount_type=r.discount_type, discount=r.discount, vat_rate=r.vat_rate,
        vat_included=r.vat_included) for r in rows)
    deal.amount_from_rows = lead.amount_from_rows
    session.flush()
