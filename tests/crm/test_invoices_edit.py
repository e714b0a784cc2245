"""Invoices without a deal (for a company or a contact, rows given) and editing a draft:
rows, due date, buyer; a sent invoice is a document and does not change."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_models.services import catalog as cat
from crm_models.services import invoices as inv_svc
from tests.factories import SYSTEM, actor, make_company, make_contact, make_deal

DAY = dt.date(2030, 3, 1)


def test_invoice_for_a_company_without_a_deal(db, org):
    p = cat.create_product(db, SYSTEM, name="Аудит", price="1000", vat_rate="20")
    company = make_company(db, org.m1, title="ООО «Вектор»", address="Тверь")
    contact = make_contact(db, org.m1, first_name="Анна", last_name="Петрова")
    db.commit()
    m1 = actor(db, org.m1)
    inv = inv_svc.create_invoice(db, m1, company_id=company.id, contact_id=contact.id,
                                 rows=[{"product_id": p.id, "quantity": "3"},
                                       {"name": "Выезд", "price": "500"}], today=DAY)
    db.commit()
    assert (inv.deal_id, inv.company_id, inv.contact_id) == (None, company.id, contact.id)
    assert (inv.buyer_name, inv.buyer_address, inv.currency) == ("ООО «Вектор»", "Тверь", "RUB")
    assert (str(inv.total), str(inv.vat), inv.responsible_id) == ("3500.00", "500.00",
                                                                   org.m1.id)
    assert [r.name for r in inv_svc.invoice_rows(db, inv.id)] == ["Аудит", "Выезд"]
    only_contact = inv_svc.create_invoice(db, m1, contact_id=contact.id, currency="RUB",
                                          rows=[{"name": "Консультация", "price": "10"}],
                                          today=DAY)
    assert only_contact.buyer_name == "Анна Петрова" and only_contact.seq == inv.seq + 1


def test_invoice_without_a_deal_bad_input_names_the_field(db, org):
    eur = cat.create_product(db, SYSTEM, name="Euro thing", price="5", currency="EUR")
    company = make_company(db, org.m2)
    db.commit()
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.create_invoice(db, SYSTEM, today=DAY)
    assert "deal_id" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.create_invoice(db, SYSTEM, company_id=company.id, today=DAY)
    assert set(exc.value.fields) == {"rows"}
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.create_invoice(db, SYSTEM, company_id=company.id, currency="rubles",
                               rows=[{"product_id": eur.id, "quantity": "-1"}], today=DAY)
    assert {"currency", "rows[0].quantity"} <= set(exc.value.fields)
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.create_invoice(db, SYSTEM, company_id=company.id,
                               rows=[{"product_id": eur.id}], today=DAY)
    assert "EUR" in exc.value.fields["rows[0].product_id"]
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.create_invoice(db, SYSTEM, contact_id=424242, rows=[{"name": "x", "price": 1}],
                               today=DAY)
    assert exc.value.fields == {"contact_id": "no contact with id 424242"}
    # m1 ("own" level) cannot see m2's company, so cannot invoice it
    with pytest.raises((ValidationFailed, NotFound, PermissionDenied)):
        inv_svc.create_invoice(db, actor(db, org.m1), company_id=company.id,
                               rows=[{"name": "x", "price": 1}], today=DAY)
    db.rollback()
    # refused creations gave their numbers back
    first = inv_svc.create_invoice(db, SYSTEM, company_id=company.id,
                                   rows=[{"name": "x", "price": 1}], today=DAY)
    assert first.seq == 1


def test_editing_a_draft(db, org):
    p = cat.create_product(db, SYSTEM, name="Лицензия", price="100", vat_rate="10")
    company = make_company(db, org.m1, title="ООО «Альфа»")
    other = make_company(db, org.m1, title="АО «Бета»", address="Казань")
    db.commit()
    m1 = actor(db, org.m1)
    inv = inv_svc.create_invoice(db, m1, company_id=company.id,
                                 rows=[{"product_id": p.id}], today=DAY)
    db.commit()
    inv_svc.update_invoice(db, m1, inv.id, rows=[{"product_id": p.id, "quantity": 2},
                                                 {"name": "Доставка", "price": "50"}],
                           due_on="2030-03-20", company_id=other.id, buyer_inn="1655000000")
    db.commit()
    db.refresh(inv)
    assert (str(inv.total), inv.due_on, inv.company_id, inv.buyer_name, inv.buyer_address,
            inv.buyer_inn) == ("250.00", dt.date(2030, 3, 20), other.id, "АО «Бета»",
                               "Казань", "1655000000")
    ev = db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "invoice.updated")
                    ).one()
    assert ev.payload["fields"]["total"] == "250.00"
    # nothing changed: no event
    inv_svc.update_invoice(db, m1, inv.id, due_on="2030-03-20")
    assert db.scalar(select(OutboxEvent.id).where(
        OutboxEvent.event_type == "invoice.updated").order_by(OutboxEvent.id.desc())) == ev.id
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.update_invoice(db, m1, inv.id, due_on="2030-02-01", rows=[], number="7",
                               buyer_kpp="12")
    assert set(exc.value.fields) == {"number"}
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.update_invoice(db, m1, inv.id, due_on="2030-02-01", rows=[], buyer_kpp="12")
    assert set(exc.value.fields) == {"due_on", "rows", "buyer_kpp"}
    with pytest.raises(PermissionDenied):
        inv_svc.update_invoice(db, actor(db, org.observer), inv.id, due_on="2030-04-01")
    inv_svc.change_invoice_stage(db, m1, inv.id, "sent")
    with pytest.raises(Conflict):
        inv_svc.update_invoice(db, m1, inv.id, due_on="2030-04-01")


def test_a_deal_invoice_takes_the_deals_rows_not_given_ones(db, org):
    deal = make_deal(db, org.m1)
    db.commit()
    with pytest.raises(ValidationFailed) as exc:
        inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, rows=[{"name": "x", "price": 1}])
    assert set(exc.value.fields) == {"rows", "deal_id"}
