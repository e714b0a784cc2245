"""Invoice pages: made from the deal card in a few clicks, the card with stage buttons and
the PDF download, the requisites settings page."""
from __future__ import annotations

import re

from sqlalchemy import select

from crm_models.invoices import Invoice
from crm_models.services import catalog as cat
from crm_models.services.product_rows import set_product_rows
from tests.factories import SYSTEM, make_company, make_deal

from .pages_support import Browser, field_error, fresh, input_value, set_locale, text


def test_invoice_from_the_deal_card_and_its_pdf(app, db, org, client, auth):
    company = make_company(db, org.m1, title="ООО «Вектор»")
    deal = make_deal(db, org.m1, title="Поставка", company_id=company.id)
    p = cat.create_product(db, SYSTEM, name="Сервер", price="1000", vat_rate="20")
    set_product_rows(db, SYSTEM, "deal", deal.id, [{"product_id": p.id, "quantity": 2}])
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/deals/{deal.id}"))
    assert f'href="/deals/{deal.id}/invoice"' in html and "Выставить счёт" in html
    r = b.post(f"/deals/{deal.id}/invoice", {"buyer_inn": "123", "due_on": "2000-01-01",
                                             "issued_on": "2030-01-01"})
    assert r.status_code == 422
    html = text(r)
    assert field_error(html, "buyer_inn") == "должен состоять из 10 или 12 цифр"
    assert field_error(html, "due_on") == "не может быть раньше даты счёта"
    assert input_value(html, "buyer_inn") == "123"
    assert fresh(db).scalars(select(Invoice)).first() is None
    r = b.post(f"/deals/{deal.id}/invoice", {"buyer_inn": "7712345678", "due_on": "2030-01-10",
                                             "issued_on": "2030-01-01"})
    assert r.status_code == 302, text(r)[:2000]
    inv_id = int(re.search(r"/invoices/(\d+)$", r.headers["Location"]).group(1))
    html = text(b.get(f"/invoices/{inv_id}"))
    assert "Счёт № 1" in html and "Черновик" in html and "ИНН 7712345678" in html
    assert f"/invoices/{inv_id}/pdf?lang=ru" in html
    r = b.get(f"/invoices/{inv_id}/pdf?lang=ru")
    assert r.status_code == 200 and r.data.startswith(b"%PDF-")
    assert "attachment" in r.headers["Content-Disposition"]
    r = b.post(f"/invoices/{inv_id}/stage", {"stage": "sent"})
    assert r.status_code == 302
    assert fresh(db).get(Invoice, inv_id).stage == "sent"
    html = text(b.get(f"/deals/{deal.id}"))
    assert "Счёт № 1" in html and "Отправлен" in html
    html = text(b.get("/invoices"))
    assert "ООО «Вектор»" in html
    set_locale(db, org.m1, "en")
    html = text(b.get(f"/invoices/{inv_id}"))
    assert "Invoice № 1" in html and "Sent" in html and "Download PDF" in html


def test_requisites_page_is_for_admins(app, db, org, client, auth):
    b = Browser(client, auth).login(org.m1)
    assert b.get("/admin/requisites").status_code == 403
    second = app.test_client()
    a = Browser(second, type(auth)(second)).login(org.admin)
    html = text(a.get("/admin/requisites"))
    assert "ИНН" in html and "Корр. счёт" in html and "Расчётный счёт" in html
    form = {"name": "ООО «Маршрут»", "inn": "77012345", "kpp": "770101001", "bik": "04452522"}
    r = a.post("/admin/requisites", form)
    assert r.status_code == 422
    assert field_error(text(r), "inn") == "должен состоять из 10 или 12 цифр"
    assert field_error(text(r), "bik") == "должен состоять из 9 цифр"
    form.update(inn="7701234567", bik="044525225")
    assert a.post("/admin/requisites", form).status_code == 302
    assert input_value(text(a.get("/admin/requisites")), "inn") == "7701234567"
