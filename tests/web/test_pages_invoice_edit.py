"""Invoice pages: an invoice for a company without a deal, made from its card; a draft edited
(rows, due date, buyer); a sent invoice no longer editable."""
from __future__ import annotations

import re

from sqlalchemy import select

from crm_models.invoices import Invoice
from crm_models.services import catalog as cat
from crm_models.services import invoices as inv_svc
from tests.factories import SYSTEM, make_company, make_contact

from .pages_support import Browser, field_error, fresh, text


def test_invoice_for_a_company_from_its_card(app, db, org, client, auth):
    company = make_company(db, org.m1, title="ООО «Вектор»")
    p = cat.create_product(db, SYSTEM, name="Сервер", price="1000", vat_rate="20")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/companies/{company.id}"))
    assert f"/companies/{company.id}/invoice" in html and "Выставить счёт" in html
    assert "Сервер" in text(b.get(f"/companies/{company.id}/invoice"))
    r = b.post(f"/companies/{company.id}/invoice", {
        "issued_on": "2030-01-01", "due_on": "2030-01-10", "buyer_inn": "7712345678",
        "product_id": [str(p.id), ""], "name": ["", ""], "quantity": ["-2", ""],
        "price": ["", ""]})
    assert r.status_code == 422
    assert "Строка 1, Количество" in text(r)
    assert fresh(db).scalars(select(Invoice)).first() is None
    r = b.post(f"/companies/{company.id}/invoice", {
        "issued_on": "2030-01-01", "due_on": "2030-01-10", "buyer_inn": "7712345678",
        "product_id": [str(p.id), ""], "name": ["", "Доставка"], "quantity": ["2", "1"],
        "price": ["", "300"]})
    assert r.status_code == 302, text(r)[:2000]
    inv_id = int(re.search(r"/invoices/(\d+)$", r.headers["Location"]).group(1))
    inv = fresh(db).get(Invoice, inv_id)
    assert (inv.company_id, inv.deal_id, str(inv.total), inv.buyer_name) == (
        company.id, None, "2300.00", "ООО «Вектор»")
    assert "Счёт № 1" in text(b.get(f"/companies/{company.id}"))


def test_editing_a_draft_on_its_page(app, db, org, client, auth):
    contact = make_contact(db, org.m1, first_name="Анна", last_name="Петрова")
    db.commit()
    inv = inv_svc.create_invoice(db, SYSTEM, contact_id=contact.id,
                                 rows=[{"name": "Работы", "price": "100"}])
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/invoices/{inv.id}"))
    assert f"/invoices/{inv.id}/edit" in html
    html = text(b.get(f"/invoices/{inv.id}/edit"))
    assert 'value="Анна Петрова"' in html and 'value="Работы"' in html
    r = b.post(f"/invoices/{inv.id}/edit", {"buyer_name": "ИП Петрова", "due_on": "1999-01-01",
                                            "name": ["Работы"], "price": ["100"],
                                            "quantity": ["1"], "product_id": [""]})
    assert r.status_code == 422
    assert field_error(text(r), "due_on") == "не может быть раньше даты счёта"
    r = b.post(f"/invoices/{inv.id}/edit", {"buyer_name": "ИП Петрова", "due_on": "",
                                            "buyer_inn": "", "buyer_kpp": "",
                                            "buyer_address": "Тверь", "comments": "",
                                            "name": ["Работы", "Выезд"],
                                            "price": ["100", "50"], "quantity": ["3", "1"],
                                            "product_id": ["", ""]})
    assert r.status_code == 302, text(r)[:2000]
    got = fresh(db).get(Invoice, inv.id)
    assert (got.buyer_name, got.buyer_address, str(got.total)) == ("ИП Петрова", "Тверь",
                                                                    "350.00")
    inv_svc.change_invoice_stage(db, SYSTEM, inv.id, "sent")
    db.commit()
    assert f"/invoices/{inv.id}/edit" not in text(b.get(f"/invoices/{inv.id}"))
    r = b.post(f"/invoices/{inv.id}/edit", {"buyer_name": "X"})
    assert r.status_code == 302 and fresh(db).get(Invoice, inv.id).buyer_name == "ИП Петрова"
    # the observer may read but not change it
    second = app.test_client()
    o = Browser(second, type(auth)(second)).login(org.observer)
    assert o.get(f"/invoices/{inv.id}/edit").status_code in (403, 404)
