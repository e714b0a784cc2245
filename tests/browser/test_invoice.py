"""A manager makes an invoice from a deal in the browser and downloads its PDF."""
from __future__ import annotations

import subprocess

import pytest

from crm_models.services import catalog as cat
from crm_models.services.product_rows import set_product_rows
from tests.factories import SYSTEM, make_company, make_deal

from .conftest import login

pytestmark = pytest.mark.browser


def test_invoice_from_a_deal_and_its_pdf(page, db, org, tmp_path):
    company = make_company(db, org.m1, title="ООО «Вектор»")
    deal = make_deal(db, org.m1, title="Поставка станков", company_id=company.id)
    p = cat.create_product(db, SYSTEM, name="Станок токарный", price="101.01", vat_rate="20")
    set_product_rows(db, SYSTEM, "deal", deal.id, [{"product_id": p.id, "quantity": 1}])
    db.commit()
    login(page, "m1@test.local")
    page.goto(f"/deals/{deal.id}")
    page.click("#invoices a.btn")
    page.fill("input[name=buyer_inn]", "7712345678")
    page.click("form.record-form button[type=submit]")
    page.wait_for_url("**/invoices/*")
    assert "Черновик" in page.content()
    with page.expect_download() as info:
        page.click("text=Скачать PDF")
    path = tmp_path / "invoice.pdf"
    info.value.save_as(path)
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(path), "-"],
                                   capture_output=True, check=True).stdout.decode().split())
    assert "ИНН 7712345678" in text and "Станок токарный" in text
    assert "Сто один рубль 01 копейка" in text
    assert page.console_errors == []
