"""Invoice service functions: create from a deal, change the stage, read; our requisites.

Rights are the matrix's "invoice" row with levels like deals' (own, department … all), on
the invoice's responsible user. Each write records an audit event and outbox events
(``invoice.created``, ``invoice.stage_changed``, and ``invoice.paid`` on payment) in the
caller's transaction.

Numbering: per calendar year, ``<prefix><n>`` with n = 1, 2, … and no gaps. The number is
taken from the year's ``invoice_counter`` row, locked until the transaction ends (PostgreSQL:
``SELECT … FOR UPDATE``; SQLite: the database write lock, taken by the counter's upsert), and
the whole creation runs in a savepoint, so a creation that fails gives its number back.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..catalog import ProductRow
from ..db import MAX_ROW_ID, utcnow
from ..entities import Contact, Deal
from ..errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from ..fields import Field, _coerce
from ..invoices import REQUISITES, STAGE_MOVES, Invoice, InvoiceCounter, InvoiceStage, OurCompany
from ..permissions import Actor
from ..serialize import json_value
from . import product_rows as pr
from . import records
from .rows import _sqlite_write

REQUISITE_LIMITS = {"inn": 12, "kpp": 9, "ogrn": 15, "bik": 9, "corr_account": 20,
                    "account": 20, "invoice_prefix": 20, "address": 500}
DIGITS = {"inn": (10, 12), "kpp": (9,), "ogrn": (13, 15), "bik": (9,), "corr_account": (20,),
          "account": (20,)}


# --- our requisites --------------------------------------------------------------------------

def our_company(session: Session) -> OurCompany:
    """The requisites row (an empty one until the settings page is saved)."""
    return session.get(OurCompany, 1) or OurCompany(id=1, **{k: "" for k in REQUISITES})


def _check_digits(name: str, value: str, errors: dict[str, str]) -> None:
    if value and (not value.isdigit() or len(value) not in DIGITS[name]):
        errors[name] = "must be " + " or ".join(str(n) for n in DIGITS[name]) + " digits"


def save_requisites(session: Session, actor: Actor, **fields: Any) -> OurCompany:
    """Change our requisites (needs "manage CRM settings")."""
    actor.require_flag("manage_settings")
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for name, value in fields.items():
        if name not in REQUISITES:
            errors[str(name)[:60]] = "is not a requisite"
            continue
        try:
            clean = _coerce(Field(name, "string", "", "",
                                  max_length=REQUISITE_LIMITS.get(name, 255)), value)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        clean = clean or ""
        if name in DIGITS:
            _check_digits(name, clean, errors)
        values[name] = clean
    if errors:
        raise ValidationFailed(errors)
    company = session.get(OurCompany, 1)
    if company is None:
        company = OurCompany(id=1, **{k: "" for k in REQUISITES})
        session.add(company)
    changes = {k: [getattr(company, k) or "", v] for k, v in values.items()
               if (getattr(company, k) or "") != v}
    for k, v in values.items():
        setattr(company, k, v)
    company.updated_at = utcnow()
    session.flush()
    if changes:
        records.record_event(session, actor, entity="our_company", entity_id=1,
                             action="updated", event_type=None, changes=changes)
    return company


# --- numbering -------------------------------------------------------------------------------

def next_number(session: Session, year: int) -> int:
    """Take the next number of ``year``; its counter row stays locked until the end of the
    transaction, so concurrent creations queue here and none sees a number twice."""
    bind = session.get_bind()
    table = InvoiceCounter.__table__
    if bind.dialect.name == "postgresql":
        session.execute(pg_insert(table).values(year=year, last=0)
                        .on_conflict_do_nothing(index_elements=["year"]))
        last = session.scalar(select(table.c.last).where(table.c.year == year)
                              .with_for_update())
    else:
        # The upsert is a write: it takes SQLite's database lock before the read below.
        _sqlite_write(lambda: session.execute(
            sqlite_insert(table).values(year=year, last=0)
            .on_conflict_do_nothing(index_elements=["year"])))
        last = session.scalar(select(table.c.last).where(table.c.year == year))
    seq = int(last or 0) + 1
    session.execute(update(table).where(table.c.year == year).values(last=seq))
    return seq


# --- invoices --------------------------------------------------------------------------------

def invoice_dict(inv: Invoice) -> dict[str, Any]:
    out = {k: json_value(getattr(inv, k)) for k in (
        "id", "number", "year", "seq", "stage", "issued_on", "due_on", "paid_at", "currency",
        "total", "vat", "deal_id", "company_id", "contact_id", "buyer_name", "buyer_inn",
        "buyer_kpp", "buyer_address", "seller", "comments", "responsible_id", "opened",
        "created_by_id", "created_at", "updated_at")}
    return out


def _id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ROW_ID:
        raise NotFound(f"No {what} with id {str(value)[:40]!r}")
    return value


def get_invoice(session: Session, actor: Actor, invoice_id: int, action: str = "read",
                *, lock: bool = False) -> Invoice:
    stmt = select(Invoice).where(Invoice.id == _id(invoice_id, "invoice"))
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    inv = session.scalars(stmt).first()
    if inv is None or not actor.allows_record("invoice", "read", inv.responsible_id,
                                              inv.opened):
        raise NotFound(f"No invoice with id {invoice_id}")
    if action != "read":
        actor.require("invoice", action, inv)
    return inv


def invoice_rows(session: Session, invoice_id: int) -> list[ProductRow]:
    return pr.rows_of(session, "invoice", invoice_id)


def list_invoices(session: Session, actor: Actor, *, deal_id: Any = None, stage: Any = None,
                  page: int = 1, per_page: int = 50) -> records.Page:
    actor.require("invoice", "read")
    conds = [actor.scope(Invoice, "read")]
    errors: dict[str, str] = {}
    if deal_id not in (None, ""):
        try:
            conds.append(Invoice.deal_id == _coerce(Field("deal_id", "ref", "", ""), deal_id))
        except ValueError as exc:
            errors["deal_id"] = str(exc)
    if stage not in (None, ""):
        if stage not in STAGE_MOVES:
            errors["stage"] = "must be one of: " + ", ".join(STAGE_MOVES)
        else:
            conds.append(Invoice.stage == stage)
    if errors:
        raise ValidationFailed(errors)
    stmt = select(Invoice).where(*conds)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = list(session.scalars(stmt.order_by(Invoice.id.desc()).limit(per_page)
                                 .offset((page - 1) * per_page)))
    return records.Page(items=items, total=total, page=page, per_page=per_page)


def _date(name: str, value: Any, errors: dict[str, str]) -> dt.date | None:
    try:
        return _coerce(Field(name, "date", "", ""), value)
    except ValueError as exc:
        errors[name] = str(exc)
        return None


def create_invoice(session: Session, actor: Actor, *, deal_id: Any, issued_on: Any = None,
                   due_on: Any = None, buyer_inn: Any = "", buyer_kpp: Any = "",
                   comments: Any = "", today: dt.date | None = None) -> Invoice:
    """An invoice for a deal: its product rows copied, the buyer its company (else its first
    contact), the seller our requisites, the next number of the issue year; ``invoice.created``.
    """
    actor.require("invoice", "add")
    errors: dict[str, str] = {}
    issued = (_date("issued_on", issued_on, errors) if issued_on not in (None, "")
              else today or dt.date.today())
    if issued is None:
        raise ValidationFailed(errors)
    # The number comes first, before anything is read: on SQLite a transaction that has read
    # cannot take the write lock once another one wrote, so the lock is taken at once (and
    # waited for). A creation refused below rolls its savepoint back, and the number with it.
    with session.begin_nested():
        seq = next_number(session, issued.year)
        return _create(session, actor, deal_id, issued, seq, due_on, buyer_inn, buyer_kpp,
                       comments)


def _create(session: Session, actor: Actor, deal_id: Any, issued: dt.date, seq: int,
            due_on: Any, buyer_inn: Any, buyer_kpp: Any, comments: Any) -> Invoice:
    errors: dict[str, str] = {}
    due = _date("due_on", due_on, errors) if due_on not in (None, "") else None
    if issued and due and due < issued:
        errors["due_on"] = "must not be before the invoice date"
    buyer: dict[str, str] = {}
    for name, value, limit in (("buyer_inn", buyer_inn, 12), ("buyer_kpp", buyer_kpp, 9),
                               ("comments", comments, 20000)):
        try:
            buyer[name] = _coerce(Field(name, "text", "", "", max_length=limit), value) or ""
        except ValueError as exc:
            errors[name] = str(exc)
    _check_digits("inn", buyer.get("buyer_inn", ""), errors_inn := {})
    if errors_inn:
        errors["buyer_inn"] = errors_inn["inn"]
    _check_digits("kpp", buyer.get("buyer_kpp", ""), errors_kpp := {})
    if errors_kpp:
        errors["buyer_kpp"] = errors_kpp["kpp"]
    deal: Deal | None = None
    try:
        did = _coerce(Field("deal_id", "ref", "", "", required=True), deal_id)
        deal = records.load(session, actor, "deal", did)
    except ValueError as exc:
        errors["deal_id"] = str(exc)
    except NotFound:
        errors["deal_id"] = f"no deal with id {deal_id}"
    rows: list[ProductRow] = []
    if deal is not None:
        rows = pr.rows_of(session, "deal", deal.id)
        if not rows:
            errors["deal_id"] = "the deal has no product rows to invoice"
    if errors:
        raise ValidationFailed(errors)
    assert deal is not None
    if not actor.allows_record("invoice", "add", deal.responsible_id, deal.opened):
        raise PermissionDenied("You may not add an invoice for this deal")
    seller = our_company(session)
    contact: Contact | None = deal.contacts[0] if deal.contacts else None
    inv = Invoice(
        year=issued.year, seq=seq, number=f"{seller.invoice_prefix or ''}{seq}",
        stage=InvoiceStage.DRAFT.value, issued_on=issued, due_on=due, currency=deal.currency,
        deal_id=deal.id, company_id=deal.company_id, contact_id=contact.id if contact else None,
        buyer_name=(deal.company.title if deal.company else contact.full_name if contact
                    else ""),
        buyer_address=deal.company.address if deal.company else "",
        buyer_inn=buyer["buyer_inn"], buyer_kpp=buyer["buyer_kpp"],
        seller=seller.requisites(), comments=buyer["comments"],
        responsible_id=deal.responsible_id, opened=deal.opened, created_by_id=actor.user_id)
    inv.total, inv.vat = pr.totals(rows)
    session.add(inv)
    session.flush()
    session.add_all(ProductRow(
        entity_type="invoice", entity_id=inv.id, sort=r.sort, product_id=r.product_id,
        name=r.name, quantity=r.quantity, unit=r.unit, price=r.price,
        discount_type=r.discount_type, discount=r.discount, vat_rate=r.vat_rate,
        vat_included=r.vat_included) for r in rows)
    session.flush()
    data = invoice_dict(inv)
    records.record_event(session, actor, entity="invoice", entity_id=inv.id, action="created",
                         event_type="invoice.created",
                         changes={"number": [None, inv.number], "total": [None, data["total"]]},
                         payload={"fields": data}, responsible_id=inv.responsible_id)
    records.record_event(session, actor, entity="deal", entity_id=deal.id,
                         action="invoice_created", event_type=None,
                         changes={"invoice": [None, f"№ {inv.number}, {data['total']} "
                                                    f"{inv.currency}"]},
                         responsible_id=deal.responsible_id)
    return inv


def change_invoice_stage(session: Session, actor: Actor, invoice_id: int, stage: Any) -> Invoice:
    """Move an invoice along draft → sent → paid / overdue / cancelled;
    ``invoice.stage_changed`` (and ``invoice.paid`` when paid)."""
    inv = get_invoice(session, actor, invoice_id, "update", lock=True)
    if stage not in STAGE_MOVES:
        raise ValidationFailed({"stage": "must be one of: " + ", ".join(STAGE_MOVES)})
    if stage == inv.stage:
        return inv
    if stage not in STAGE_MOVES[inv.stage]:
        raise Conflict(f"An invoice cannot go from {inv.stage} to {stage}")
    old = inv.stage
    inv.stage = stage
    inv.updated_at = utcnow()
    if stage == InvoiceStage.PAID:
        inv.paid_at = utcnow()
    session.flush()
    data = invoice_dict(inv)
    records.record_event(session, actor, entity="invoice", entity_id=inv.id,
                         action="stage_changed", event_type="invoice.stage_changed",
                         changes={"stage": [old, stage]},
                         payload={"from": old, "to": stage, "fields": data},
                         responsible_id=inv.responsible_id)
    if stage == InvoiceStage.PAID:
        records.record_event(session, actor, entity="invoice", entity_id=inv.id, action="paid",
                             event_type="invoice.paid", changes={},
                             payload={"fields": data}, responsible_id=inv.responsible_id)
    return inv


def mark_invoice_sent(session: Session, actor: Actor, invoice_id: int) -> Invoice:
    """For the mail work: after the PDF went out, the invoice is sent."""
    return change_invoice_stage(session, actor, invoice_id, InvoiceStage.SENT.value)


def mark_overdue_invoices(session: Session, actor: Actor, today: dt.date) -> list[int]:
    """Move every sent invoice whose due date has passed to ``overdue`` (one
    ``invoice.stage_changed`` each); the ids moved. For a scheduled job."""
    ids = list(session.scalars(select(Invoice.id).where(
        Invoice.stage == InvoiceStage.SENT.value, Invoice.due_on.is_not(None),
        Invoice.due_on < today, actor.scope(Invoice, "update")).order_by(Invoice.id)))
    for invoice_id in ids:
        change_invoice_stage(session, actor, invoice_id, InvoiceStage.OVERDUE.value)
    return ids
