"""Invoices: made from a deal's rows, numbered per year without gaps (also under concurrent
creation), moved through their stages with events; rights like deals'."""
from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_models.invoices import Invoice, InvoiceCounter
from crm_models.permissions import system_actor
from crm_models.services import catalog as cat
from crm_models.services import invoices as inv_svc
from crm_models.services.product_rows import set_product_rows
from tests.factories import SYSTEM, actor, make_company, make_deal


def _deal_with_rows(db, user, **kw):
    p = cat.create_product(db, SYSTEM, name="Внедрение", price="120000", vat_rate="20")
    company = make_company(db, user, title="ООО «Вектор»", address="Москва, ул. Ленина, 1")
    deal = make_deal(db, user, company_id=company.id, **kw)
    set_product_rows(db, SYSTEM, "deal", deal.id, [
        {"product_id": p.id, "quantity": 2},
        {"name": "Обучение", "price": "15000.50", "quantity": 1, "vat_rate": "none"}])
    db.commit()
    return deal


def test_invoice_from_a_deal_copies_rows_and_buyer(db, org):
    inv_svc.save_requisites(db, SYSTEM, name="ООО «Маршрут»", inn="7701234567",
                            kpp="770101001", invoice_prefix="М-")
    deal = _deal_with_rows(db, org.m1)
    inv = inv_svc.create_invoice(db, actor(db, org.m1), deal_id=deal.id, due_on="2030-01-10",
                                 buyer_inn="7712345678", buyer_kpp="771201001",
                                 today=dt.date(2030, 1, 1))
    db.commit()
    assert (inv.number, inv.year, inv.seq, inv.stage) == ("М-1", 2030, 1, "draft")
    assert (inv.buyer_name, inv.buyer_inn, inv.buyer_address) == (
        "ООО «Вектор»", "7712345678", "Москва, ул. Ленина, 1")
    assert inv.seller["inn"] == "7701234567" and inv.responsible_id == org.m1.id
    assert (inv.total, inv.vat) == (Decimal("255000.50"), Decimal("40000.00"))
    assert [r.name for r in inv_svc.invoice_rows(db, inv.id)] == ["Внедрение", "Обучение"]
    second = inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, today=dt.date(2030, 5, 1))
    next_year = inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, issued_on="2031-01-02")
    db.commit()
    assert (second.number, next_year.number) == ("М-2", "М-1")
    [created] = db.scalars(select(OutboxEvent).where(
        OutboxEvent.event_type == "invoice.created", OutboxEvent.entity_id == inv.id)).all()
    assert created.payload["fields"]["total"] == "255000.50"


def test_bad_input_names_the_field_and_gives_the_number_back(db, org):
    deal = _deal_with_rows(db, org.m1)
    empty = make_deal(db, org.m1)
    db.commit()
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, buyer_inn="12345",
                               due_on="2000-01-01", today=dt.date(2030, 1, 1))
    assert set(exc.value.fields) == {"buyer_inn", "due_on"}
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.create_invoice(db, SYSTEM, deal_id=empty.id, today=dt.date(2030, 1, 1))
    assert exc.value.fields == {"deal_id": "the deal has no product rows to invoice"}
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.create_invoice(db, SYSTEM, deal_id=99999, today=dt.date(2030, 1, 1))
    assert exc.value.fields == {"deal_id": "no deal with id 99999"}
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, issued_on="not a date")
    assert set(exc.value.fields) == {"issued_on"}
    # the refused creations took no number: the next one is 1 (same transaction, even)
    inv = inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, today=dt.date(2030, 1, 1))
    db.commit()
    assert inv.seq == 1


def test_stages_and_their_events(db, org):
    deal = _deal_with_rows(db, org.m1)
    m1 = actor(db, org.m1)
    inv = inv_svc.create_invoice(db, m1, deal_id=deal.id)
    with pytest.raises(Conflict):
        inv_svc.change_invoice_stage(db, m1, inv.id, "paid")  # a draft is sent first
    with pytest.raises(ValidationFailed):
        inv_svc.change_invoice_stage(db, m1, inv.id, "lost")
    inv_svc.mark_invoice_sent(db, m1, inv.id)
    inv_svc.change_invoice_stage(db, m1, inv.id, "overdue")
    inv_svc.change_invoice_stage(db, m1, inv.id, "paid")
    db.commit()
    assert inv.paid_at is not None
    types = list(db.scalars(select(OutboxEvent.event_type).where(
        OutboxEvent.entity_type == "invoice").order_by(OutboxEvent.id)))
    assert types == ["invoice.created", "invoice.stage_changed", "invoice.stage_changed",
                     "invoice.overdue", "invoice.stage_changed", "invoice.paid"]
    with pytest.raises(Conflict):
        inv_svc.change_invoice_stage(db, m1, inv.id, "cancelled")


def test_rights_like_deals(db, org):
    deal = _deal_with_rows(db, org.m1)
    inv = inv_svc.create_invoice(db, actor(db, org.m1), deal_id=deal.id)
    db.commit()
    with pytest.raises(NotFound):  # another manager: own level, not theirs
        inv_svc.get_invoice(db, actor(db, org.m2), inv.id)
    assert inv_svc.get_invoice(db, actor(db, org.head), inv.id).id == inv.id  # department
    assert inv_svc.list_invoices(db, actor(db, org.m2)).total == 0
    assert inv_svc.list_invoices(db, actor(db, org.m1)).total == 1
    with pytest.raises(PermissionDenied):
        inv_svc.change_invoice_stage(db, actor(db, org.observer), inv.id, "sent")
    with pytest.raises(ValidationFailed):  # m2 may not read m1's deal: named as missing
        inv_svc.create_invoice(db, actor(db, org.m2), deal_id=deal.id)
    with pytest.raises(PermissionDenied):
        inv_svc.save_requisites(db, actor(db, org.m1), name="x")


def test_ten_concurrent_creations_get_numbers_without_gaps_or_duplicates(app, db, org):
    deal_id = _deal_with_rows(db, org.m1).id  # read here: the threads must not use ``db``
    db.rollback()
    factory = app.extensions["db_sessionmaker"]
    errors: list[BaseException] = []
    barrier = threading.Barrier(10)

    def create() -> None:
        try:
            with factory() as s:
                barrier.wait()
                inv_svc.create_invoice(s, system_actor("thread"), deal_id=deal_id,
                                       today=dt.date(2031, 3, 1))
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    db.rollback()
    seqs = sorted(db.scalars(select(Invoice.seq).where(Invoice.year == 2031)))
    assert seqs == list(range(1, 11))
    assert db.get(InvoiceCounter, 2031).last == 10


def test_sent_invoices_past_their_due_date_become_overdue(db, org):
    deal = _deal_with_rows(db, org.m1)
    late = inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, due_on="2030-01-05",
                                  today=dt.date(2030, 1, 1))
    on_time = inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, due_on="2030-01-20",
                                     today=dt.date(2030, 1, 1))
    draft = inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, due_on="2030-01-05",
                                   today=dt.date(2030, 1, 1))
    for inv in (late, on_time):
        inv_svc.mark_invoice_sent(db, SYSTEM, inv.id)
    assert inv_svc.mark_overdue_invoices(db, SYSTEM, dt.date(2030, 1, 10)) == [late.id]
    db.commit()
    assert [db.get(Invoice, i.id).stage for i in (late, on_time, draft)] == [
        "overdue", "sent", "draft"]
