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

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..catalog import ProductRow
from ..db import MAX_ROW_ID, utcnow
from ..entities import Deal
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


def list_invoices_window(session: Session, actor: Actor, *, deal_id: Any = None,
                         stage: Any = None, company_id: Any = None, contact_id: Any = None,
                         id_after: Any = None, ascending: bool = False, offset: int = 0,
                         limit: int = 50, with_total: bool = True
                         ) -> tuple[list[Invoice], int | None]:
    """Invoices the actor may read, filtered, ``limit`` of them from ``offset`` (by id,
    newest first unless ``ascending``; ``id_after`` for keyset paging); and their count."""
    actor.require("invoice", "read")
    conds = [actor.scope(Invoice, "read")]
    errors: dict[str, str] = {}
    for name, column, value in (("deal_id", Invoice.deal_id, deal_id),
                                ("company_id", Invoice.company_id, company_id),
                                ("contact_id", Invoice.contact_id, contact_id),
                                ("id_after", Invoice.id, id_after)):
        if value in (None, ""):
            continue
        try:
            ref = _coerce(Field(name, "ref", "", ""), value)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        conds.append(column > ref if name == "id_after" else column == ref)
    if stage not in (None, ""):
        if stage not in STAGE_MOVES:
            errors["stage"] = "must be one of: " + ", ".join(STAGE_MOVES)
        else:
            conds.append(Invoice.stage == stage)
    if errors:
        raise ValidationFailed(errors)
    stmt = select(Invoice).where(*conds)
    total = (session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
             if with_total else None)
    order = Invoice.id.asc() if ascending else Invoice.id.desc()
    items = list(session.scalars(stmt.order_by(order).limit(limit).offset(offset)))
    return items, total


def _date(name: str, value: Any, errors: dict[str, str]) -> dt.date | None:
    try:
        return _coerce(Field(name, "date", "", ""), value)
    except ValueError as exc:
        errors[name] = str(exc)
        return None


def create_invoice(session: Session, actor: Actor, *, deal_id: Any = None,
                   company_id: Any = None, contact_id: Any = None, rows: Any = None,
                   currency: Any = None, issued_on: Any = None, due_on: Any = None,
                   buyer_inn: Any = "", buyer_kpp: Any = "", comments: Any = "",
                   today: dt.date | None = None) -> Invoice:
    """A draft invoice, numbered with the next number of the issue year; ``invoice.created``.

    From a deal (``deal_id``): its product rows copied, the buyer its company (else its first
    contact), its currency. Without a deal, for a company and/or a contact: the ``rows`` given
    (as for a deal's product rows), in ``currency`` (RUB unless given), the buyer the company
    (else the contact). The invoice's responsible user is the record's; the seller our
    requisites as they are now.
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
        source = _Source(deal_id, company_id, contact_id, rows, currency)
        return _create(session, actor, source, issued, seq, due_on, buyer_inn, buyer_kpp,
                       comments)


class _Source:
    """What an invoice is made from, as given (checked by ``_resolve``)."""

    def __init__(self, deal_id: Any, company_id: Any, contact_id: Any, rows: Any,
                 currency: Any) -> None:
        self.deal_id, self.company_id, self.contact_id = deal_id, company_id, contact_id
        self.rows, self.currency = rows, currency


def _load_ref(session: Session, actor: Actor, entity: str, value: Any,
              errors: dict[str, str]) -> Any:
    if value in (None, ""):
        return None
    key = f"{entity}_id"
    try:
        rid = _coerce(Field(key, "ref", "", ""), value)
        return records.load(session, actor, entity, rid)
    except ValueError as exc:
        errors[key] = str(exc)
    except NotFound:
        errors[key] = f"no {entity} with id {str(value)[:40]}"
    return None


def _resolve(session: Session, actor: Actor, src: _Source,
             errors: dict[str, str]) -> tuple[Any, Any, Any, str, list[dict[str, Any]]]:
    """(deal, company, contact, currency, clean rows) of an invoice to be made."""
    if src.deal_id not in (None, ""):
        deal: Deal | None = _load_ref(session, actor, "deal", src.deal_id, errors)
        if src.rows not in (None, []):
            errors["rows"] = "an invoice made from a deal takes the deal's product rows"
        if deal is None:
            return None, None, None, "RUB", []
        rows = [pr.row_values(r) for r in pr.rows_of(session, "deal", deal.id)]
        if not rows:
            errors["deal_id"] = "the deal has no product rows to invoice"
        if src.currency not in (None, "") and str(src.currency).strip().upper() != deal.currency:
            errors["currency"] = f"an invoice made from a deal is in its currency, {deal.currency}"
        contact = deal.contacts[0] if deal.contacts else None
        return deal, deal.company, contact, deal.currency, rows
    if src.company_id in (None, "") and src.contact_id in (None, ""):
        errors["deal_id"] = "give a deal, or a company or contact to invoice"
        return None, None, None, "RUB", []
    company = _load_ref(session, actor, "company", src.company_id, errors)
    contact = _load_ref(session, actor, "contact", src.contact_id, errors)
    currency = "RUB"
    if src.currency not in (None, ""):
        try:
            currency = _coerce(Field("currency", "currency", "", ""), src.currency)
        except ValueError as exc:
            errors["currency"] = str(exc)
    clean: list[dict[str, Any]] = []
    if src.rows in (None, []):
        errors["rows"] = "an invoice needs at least one row"
    else:
        try:
            clean = pr.clean_rows(session, src.rows, currency)
        except ValidationFailed as exc:
            errors.update(exc.fields)
    return None, company, contact, currency, clean


def _buyer_fields(values: dict[str, Any], errors: dict[str, str]) -> dict[str, str]:
    """Clean ``buyer_*`` and ``comments`` values (those present in ``values``)."""
    out: dict[str, str] = {}
    for name, limit in (("buyer_name", 255), ("buyer_inn", 12), ("buyer_kpp", 9),
                        ("buyer_address", 500), ("comments", 20000)):
        if name not in values:
            continue
        try:
            out[name] = _coerce(Field(name, "text", "", "", max_length=limit),
                                values[name]) or ""
        except ValueError as exc:
            errors[name] = str(exc)
    for name, kind in (("buyer_inn", "inn"), ("buyer_kpp", "kpp")):
        found: dict[str, str] = {}
        _check_digits(kind, out.get(name, ""), found)
        if found:
            errors[name] = found[kind]
    return out


def _add_rows(session: Session, invoice_id: int, rows: list[dict[str, Any]]) -> None:
    session.add_all(ProductRow(entity_type="invoice", entity_id=invoice_id, sort=(i + 1) * 10,
                               **values) for i, values in enumerate(rows))
    session.flush()


def _create(session: Session, actor: Actor, src: _Source, issued: dt.date, seq: int,
            due_on: Any, buyer_inn: Any, buyer_kpp: Any, comments: Any) -> Invoice:
    errors: dict[str, str] = {}
    due = _date("due_on", due_on, errors) if due_on not in (None, "") else None
    if issued and due and due < issued:
        errors["due_on"] = "must not be before the invoice date"
    buyer = _buyer_fields({"buyer_inn": buyer_inn, "buyer_kpp": buyer_kpp,
                           "comments": comments}, errors)
    deal, company, contact, currency, rows = _resolve(session, actor, src, errors)
    if errors:
        raise ValidationFailed(errors)
    owner = deal or company or contact
    if not actor.allows_record("invoice", "add", owner.responsible_id, owner.opened):
        raise PermissionDenied(f"You may not add an invoice for this {owner.entity_type}")
    seller = our_company(session)
    inv = Invoice(
        year=issued.year, seq=seq, number=f"{seller.invoice_prefix or ''}{seq}",
        stage=InvoiceStage.DRAFT.value, issued_on=issued, due_on=due, currency=currency,
        deal_id=deal.id if deal else None, company_id=company.id if company else None,
        contact_id=contact.id if contact else None,
        buyer_name=(company.title if company else contact.full_name if contact else ""),
        buyer_address=company.address if company else "",
        buyer_inn=buyer["buyer_inn"], buyer_kpp=buyer["buyer_kpp"],
        seller=seller.snapshot(), comments=buyer["comments"],
        responsible_id=owner.responsible_id, opened=owner.opened, created_by_id=actor.user_id)
    session.add(inv)
    session.flush()
    _add_rows(session, inv.id, rows)
    inv.total, inv.vat = pr.totals(invoice_rows(session, inv.id))
    session.flush()
    data = invoice_dict(inv)
    records.record_event(session, actor, entity="invoice", entity_id=inv.id, action="created",
                         event_type="invoice.created",
                         changes={"number": [None, inv.number], "total": [None, data["total"]]},
                         payload={"fields": data}, responsible_id=inv.responsible_id)
    records.record_event(session, actor, entity=owner.entity_type, entity_id=owner.id,
                         action="invoice_created", event_type=None,
                         changes={"invoice": [None, f"№ {inv.number}, {data['total']} "
                                                    f"{inv.currency}"]},
                         responsible_id=owner.responsible_id)
    return inv


EDITABLE = ("rows", "due_on", "company_id", "contact_id", "buyer_name", "buyer_inn",
            "buyer_kpp", "buyer_address", "comments")


def update_invoice(session: Session, actor: Actor, invoice_id: int, **fields: Any) -> Invoice:
    """Change a draft invoice: its rows (as for a deal, in the invoice's currency), due date,
    buyer (company, contact, name, ИНН, КПП, address) and comments; ``invoice.updated``.
    A sent, paid, overdue or cancelled invoice is a document already: it cannot change."""
    inv = get_invoice(session, actor, invoice_id, "update", lock=True)
    errors: dict[str, str] = {}
    for key in fields:
        if key not in EDITABLE:
            errors[str(key)[:60]] = "cannot be changed on an invoice"
    if errors:
        raise ValidationFailed(errors)
    if inv.stage != InvoiceStage.DRAFT.value:
        raise Conflict(f"Only a draft invoice can be changed; this one is {inv.stage}")
    values: dict[str, Any] = _buyer_fields(fields, errors)
    if "due_on" in fields:
        values["due_on"] = (_date("due_on", fields["due_on"], errors)
                            if fields["due_on"] not in (None, "") else None)
        if values["due_on"] and values["due_on"] < inv.issued_on:
            errors["due_on"] = "must not be before the invoice date"
    for entity in ("company", "contact"):
        if f"{entity}_id" in fields:
            rec = _load_ref(session, actor, entity, fields[f"{entity}_id"], errors)
            values[f"{entity}_id"] = rec.id if rec else None
            if rec is not None and entity == "company" and "buyer_name" not in fields:
                values["buyer_name"] = rec.title
                values.setdefault("buyer_address", rec.address)
    rows: list[dict[str, Any]] | None = None
    if "rows" in fields:
        if fields["rows"] in (None, []):
            errors["rows"] = "an invoice needs at least one row"
        else:
            try:
                rows = pr.clean_rows(session, fields["rows"], inv.currency)
            except ValidationFailed as exc:
                errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
    changes = {k: [json_value(getattr(inv, k)), json_value(v)] for k, v in values.items()
               if getattr(inv, k) != v}
    for k, v in values.items():
        setattr(inv, k, v)
    if rows is not None:
        before = [pr.brief(pr.row_dict(r)) for r in invoice_rows(session, inv.id)]
        session.execute(delete(ProductRow).where(ProductRow.entity_type == "invoice",
                                                 ProductRow.entity_id == inv.id))
        _add_rows(session, inv.id, rows)
        after = [pr.brief(pr.row_dict(r)) for r in invoice_rows(session, inv.id)]
        if before != after:
            changes["rows"] = [before, after]
        total, vat = pr.totals(invoice_rows(session, inv.id))
        if total != inv.total:
            changes["total"] = [json_value(inv.total), json_value(total)]
        inv.total, inv.vat = total, vat
    if not changes:
        return inv
    inv.updated_at = utcnow()
    session.flush()
    records.record_event(session, actor, entity="invoice", entity_id=inv.id, action="updated",
                         event_type="invoice.updated", changes=changes,
                         payload={"fields": invoice_dict(inv)},
                         responsible_id=inv.responsible_id)
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
    if stage in (InvoiceStage.PAID, InvoiceStage.OVERDUE):
        records.record_event(session, actor, entity="invoice", entity_id=inv.id, action=stage,
                             event_type=f"invoice.{stage}", changes={},
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
