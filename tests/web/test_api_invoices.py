"""``/api/v1/invoices``: create from a deal, stages, and the PDF read back with pdftotext."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from crm_models.services import catalog as cat
from crm_models.services import invoices as inv_svc
from crm_models.services.product_rows import set_product_rows
from tests.factories import SYSTEM, make_company, make_deal

from .api_support import (  # noqa: F401  (fast_passwords: an autouse fixture)
    api_for,
    error_of,
    fast_passwords,
    outbox_types,
)


def pdf_text(data: bytes, tmp_path) -> str:
    assert data.startswith(b"%PDF-")
    path = tmp_path / "invoice.pdf"
    path.write_bytes(data)
    assert shutil.which("pdftotext"), "pdftotext is missing: make pdf-deps"
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                         check=True, timeout=60)
    return " ".join(out.stdout.decode("utf-8").split())  # one space between words


@pytest.fixture()
def deal(db, org):
    inv_svc.save_requisites(db, SYSTEM, name="ООО «Маршрут»", inn="7701234567",
                            kpp="770101001", ogrn="1027700132195", address="Москва",
                            bank="ПАО Сбербанк", bik="044525225",
                            corr_account="30101810400000000225",
                            account="40702810938000000001", director="Иванов И. И.",
                            accountant="Петрова А. А.")
    company = make_company(db, org.m1, title="ООО «Вектор»")
    d = make_deal(db, org.m1, title="Поставка", company_id=company.id)
    p = cat.create_product(db, SYSTEM, name="Сервер стоечный", price="100000", vat_rate="20")
    set_product_rows(db, SYSTEM, "deal", d.id, [
        {"product_id": p.id, "quantity": 1},
        {"name": "Монтаж и настройка", "price": "23456.78", "quantity": 1,
         "vat_rate": "none"}])
    db.commit()
    return d


def test_invoice_over_rest_and_its_pdf(app, db, org, deal, tmp_path):
    m1 = api_for(app, db, org.m1)
    r = m1.post("/api/v1/invoices", json={"deal_id": deal.id, "buyer_inn": "7712345678",
                                          "buyer_kpp": "771201001", "due_on": "2099-01-01"})
    assert r.status_code == 201, r.get_json()
    inv = r.get_json()
    assert inv["total"] == "123456.78" and inv["stage"] == "draft" and len(inv["rows"]) == 2
    r = m1.get(f"/api/v1/invoices/{inv['id']}/pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    text = pdf_text(r.data, tmp_path)
    assert f"Счёт на оплату № {inv['number']} от" in text
    assert "ИНН 7712345678" in text and "КПП 771201001" in text  # the buyer
    assert "ООО «Вектор»" in text and "ИНН 7701234567" in text and "044525225" in text
    assert "Сервер стоечный" in text and "Монтаж и настройка" in text
    assert "100 000,00" in text and "23 456,78" in text and "Без НДС" in text
    assert "Всего наименований 2, на сумму 123 456,78 руб." in text
    assert "Сто двадцать три тысячи четыреста пятьдесят шесть рублей 78 копеек" in text
    r = m1.get(f"/api/v1/invoices/{inv['id']}/pdf", query_string={"lang": "en"})
    text = pdf_text(r.data, tmp_path)
    assert f"Invoice No. {inv['number']}" in text and "INN 7712345678" in text
    assert "One hundred twenty-three thousand four hundred fifty-six and 78/100 RUB" in text
    assert error_of(m1.get(f"/api/v1/invoices/{inv['id']}/pdf",
                           query_string={"lang": "de"}))["fields"] == {
        "lang": "must be ru or en"}
    assert api_for(app, db, org.m2).get(f"/api/v1/invoices/{inv['id']}/pdf").status_code == 404
    r = m1.post(f"/api/v1/invoices/{inv['id']}/stage", json={"stage": "sent"})
    assert r.get_json()["stage"] == "sent"
    r = m1.post(f"/api/v1/invoices/{inv['id']}/stage", json={"stage": "paid"})
    assert r.get_json()["stage"] == "paid" and r.get_json()["paid_at"]
    assert m1.post(f"/api/v1/invoices/{inv['id']}/stage",
                   json={"stage": "draft"}).status_code == 409
    assert outbox_types(db, "invoice") == ["invoice.created", "invoice.stage_changed",
                                           "invoice.stage_changed", "invoice.paid"]
    r = m1.get("/api/v1/invoices", query_string={"deal_id": deal.id})
    assert [i["id"] for i in r.get_json()["items"]] == [inv["id"]]


def test_bad_input_names_the_field(app, db, org, deal):
    m1 = api_for(app, db, org.m1)
    r = m1.post("/api/v1/invoices", json={"deal_id": deal.id, "buyer_inn": "12ab",
                                          "colour": 1})
    assert set(error_of(r)["fields"]) == {"colour"}
    r = m1.post("/api/v1/invoices", json={"deal_id": deal.id, "buyer_inn": "12ab"})
    assert error_of(r)["fields"] == {"buyer_inn": "must be 10 or 12 digits"}
    r = m1.post("/api/v1/invoices", json={})
    assert error_of(r)["fields"] == {
        "deal_id": "give a deal, or a company or contact to invoice"}
    r = m1.post("/api/v1/invoices", json={"deal_id": "x"})
    assert set(error_of(r)["fields"]) == {"deal_id"}


def test_thirty_rows_render(app, db, org, deal, tmp_path):
    rows = [{"name": f"Позиция {i}", "price": f"{i}00.{i % 100:02d}", "quantity": i % 7 + 1,
             "vat_rate": "20"} for i in range(1, 31)]
    set_product_rows(db, SYSTEM, "deal", deal.id, rows)
    db.commit()
    m1 = api_for(app, db, org.m1)
    inv = m1.post("/api/v1/invoices", json={"deal_id": deal.id}).get_json()
    text = pdf_text(m1.get(f"/api/v1/invoices/{inv['id']}/pdf").data, tmp_path)
    for i in range(1, 31):
        assert f"Позиция {i} " in text
    assert "Всего наименований 30" in text


def test_invoice_for_a_company_and_a_draft_patched(app, db, org, deal):
    m1 = api_for(app, db, org.m1)
    company_id = deal.company_id
    r = m1.post("/api/v1/invoices", json={"company_id": company_id, "currency": "RUB",
                                          "rows": [{"name": "Аудит", "price": "500.00",
                                                    "quantity": "2"}]})
    assert r.status_code == 201, r.get_json()
    inv = r.get_json()
    assert (inv["deal_id"], inv["company_id"], inv["total"]) == (None, company_id, "1000.00")
    r = m1.patch(f"/api/v1/invoices/{inv['id']}", json={
        "rows": [{"name": "Аудит", "price": "500.00", "quantity": "3"}],
        "due_on": "2099-01-01", "buyer_address": "Тверь"})
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["total"], r.get_json()["buyer_address"]) == ("1500.00", "Тверь")
    r = m1.patch(f"/api/v1/invoices/{inv['id']}", json={"number": "7"})
    assert set(error_of(r)["fields"]) == {"number"}
    assert m1.post(f"/api/v1/invoices/{inv['id']}/stage", json={"stage": "sent"}
                   ).status_code == 200
    r = m1.patch(f"/api/v1/invoices/{inv['id']}", json={"due_on": "2099-02-01"})
    assert r.status_code == 409
    assert outbox_types(db, "invoice") == ["invoice.created", "invoice.updated",
                                           "invoice.stage_changed"]
