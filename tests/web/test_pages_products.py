"""The catalog pages: list with search and section filter, card, create/edit with field
errors, in Russian and English; the menu entry; rights."""
from __future__ import annotations

import re

from sqlalchemy import select

from crm_models.catalog import Product
from crm_models.org import PermLevel
from crm_models.services import catalog as cat
from crm_models.services.org import save_role
from tests.factories import SYSTEM, role

from .pages_support import NBSP, Browser, field_error, fresh, input_value, set_locale, text


def _catalog(db):
    goods = cat.save_section(db, SYSTEM, name="Оборудование")
    services = cat.save_section(db, SYSTEM, name="Услуги")
    cat.create_product(db, SYSTEM, name="Сервер Стойка-2", sku="SRV-2", price="250000",
                       section_id=goods.id, vat_rate="20", unit="pcs")
    cat.create_product(db, SYSTEM, name="Монтаж сервера", sku="INST", price="15000",
                       section_id=services.id, vat_rate="none", unit="hour")
    db.commit()
    return goods, services


def test_list_search_section_filter_and_menu(app, db, org, client, auth):
    goods, _services = _catalog(db)
    b = Browser(client, auth).login(org.m1)
    html = text(b.get("/"))
    assert 'href="/products"' in html and "Товары" in html
    html = text(b.get("/products"))
    assert "Сервер Стойка-2" in html and "Монтаж сервера" in html
    assert f"250{NBSP}000,00" in html and "без НДС" in html and "час" in html
    assert "+ Новый товар" not in html  # a plain manager may not add products
    html = text(b.get("/products", query_string={"section_id": goods.id}))
    assert "Сервер Стойка-2" in html and "Монтаж сервера" not in html
    html = text(b.get("/products", query_string={"q": "монтаж"}))
    assert "Монтаж сервера" in html and "Сервер Стойка-2" not in html
    html = text(b.get("/products", query_string={"section_id": "junk"}))
    assert "<b>Раздел</b>: должно быть целым числом" in html  # named, no error page
    set_locale(db, org.m1, "en")
    html = text(b.get("/products"))
    assert "Products" in html and "without VAT" in html and "hour" in html


def test_card_shows_every_field(app, db, org, client, auth):
    _catalog(db)
    p = db.scalars(select(Product).where(Product.sku == "SRV-2")).one()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/products/{p.id}"))
    assert "Сервер Стойка-2" in html and "SRV-2" in html and "Оборудование" in html
    assert "20 %, включён в цену" in html and "шт." in html
    assert b.get("/products/999999").status_code == 404


def test_create_and_edit_with_field_errors(app, db, org, client, auth):
    goods, _ = _catalog(db)
    b = Browser(client, auth).login(org.m1)
    assert b.get("/products/new").status_code == 403
    save_role(db, SYSTEM, role(db, "manager").id,
              levels={("product", "add"): int(PermLevel.ALL),
                      ("product", "update"): int(PermLevel.ALL)})
    db.commit()
    html = text(b.get("/products/new"))
    assert "Новый товар" in html and "Ставка НДС" in html and "Единица измерения" in html
    r = b.post("/products/new", {"name": "Кабель", "price": "-10", "vat_rate": "18",
                                 "unit": "pcs", "currency": "RUB", "section_id": "424242",
                                 "active": "on"})
    assert r.status_code == 422
    html = text(r)
    assert field_error(html, "price") == "должно быть неотрицательной суммой меньше 10^15"
    assert field_error(html, "vat_rate") == "должно быть одним из: 20, 10, 0, none"
    assert field_error(html, "section_id") == "не существует (id 424242)"
    assert input_value(html, "name") == "Кабель" and input_value(html, "price") == "-10"
    assert fresh(db).scalars(select(Product).where(Product.name == "Кабель")).first() is None
    r = b.post("/products/new", {"name": "Кабель", "sku": "CBL", "price": "99,90",
                                 "vat_rate": "10", "unit": "m", "currency": "RUB",
                                 "section_id": str(goods.id), "active": "on",
                                 "vat_included": "on"})
    assert r.status_code == 302, text(r)[:2000]
    pid = int(re.search(r"/products/(\d+)$", r.headers["Location"]).group(1))
    p = fresh(db).get(Product, pid)
    assert (p.name, str(p.price), p.vat_rate, p.unit, p.section_id, p.created_by_id) == (
        "Кабель", "99.90", "10", "m", goods.id, org.m1.id)
    html = text(b.get(f"/products/{pid}/edit"))
    assert input_value(html, "price") == "99.90"
    r = b.post(f"/products/{pid}/edit", {"name": "", "price": "120", "vat_rate": "10",
                                         "unit": "m", "currency": "RUB"})
    assert r.status_code == 422 and field_error(text(r), "name")
    r = b.post(f"/products/{pid}/edit", {"name": "Кабель UTP", "price": "120",
                                         "vat_rate": "10", "unit": "m", "currency": "RUB"})
    assert r.status_code == 302
    p = fresh(db).get(Product, pid)
    assert (p.name, str(p.price), p.active) == ("Кабель UTP", "120.00", False)
    r = b.post(f"/products/{pid}/delete")
    assert r.status_code == 403  # delete was not granted
    set_locale(db, org.m1, "en")
    html = text(b.get("/products/new"))
    assert "New product" in html and "VAT rate" in html and "Unit of measure" in html


def test_sections_page(app, db, org, client, auth):
    b = Browser(client, auth).login(org.admin)
    r = b.post("/product-sections", {"name": "Софт"})
    assert r.status_code == 302
    r = b.post("/product-sections", {"name": ""})
    assert r.status_code == 422 and field_error(text(r), "name")
    parent = fresh(db).scalars(select(cat.ProductSection)).one()
    r = b.post("/product-sections", {"name": "Лицензии", "parent_id": str(parent.id)})
    assert r.status_code == 302
    html = text(b.get("/product-sections"))
    assert "Софт" in html and "Лицензии" in html
    r = b.post("/product-sections", {"delete": str(parent.id)})
    assert r.status_code == 409 and "подразделы" in text(r)


def test_rows_editor_on_a_deal(app, db, org, client, auth):
    from crm_models.entities import Deal
    from tests.factories import make_deal

    srv = cat.create_product(db, SYSTEM, name="Сервер", price="200000", vat_rate="20")
    usd = cat.create_product(db, SYSTEM, name="Licence", price="10", currency="USD")
    deal = make_deal(db, org.m1, amount="5")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/deals/{deal.id}"))
    assert 'id="product-rows"' in html and "Добавить товары" in html
    html = text(b.get(f"/deals/{deal.id}/products"))
    assert "Сервер" in html and "Licence" not in html  # only products in the deal's currency
    r = b.post(f"/deals/{deal.id}/products", {
        "product_id": [str(srv.id), "", str(usd.id), ""],
        "name": ["", "Монтаж", "", ""], "quantity": ["-2", "1", "1", ""],
        "price": ["", "5000", "", ""], "discount": ["", "", "", ""],
        "discount_type": ["percent"] * 4, "vat_rate": ["", "none", "", ""],
        "vat_included": ["", "", "", ""], "amount_from_rows": "on"})
    assert r.status_code == 422
    html = text(r)
    assert "Строка 1, Количество: должно быть больше нуля" in html
    assert "Строка 3, Товар: цена товара в USD, а сумма записи в RUB" in html
    assert 'value="Монтаж"' in html
    assert fresh(db).get(Deal, deal.id).amount == 5
    r = b.post(f"/deals/{deal.id}/products", {
        "product_id": [str(srv.id), "", ""], "name": ["", "Монтаж", ""],
        "quantity": ["2", "1", ""], "price": ["", "5000", ""], "discount": ["10", "", ""],
        "discount_type": ["percent"] * 3, "vat_rate": ["", "none", ""],
        "vat_included": ["", "", ""], "amount_from_rows": "on"})
    assert r.status_code == 302, text(r)[:3000]
    d = fresh(db).get(Deal, deal.id)
    assert (str(d.amount), d.amount_from_rows) == ("365000.00", True)
    html = text(b.get(f"/deals/{deal.id}"))
    assert "Сервер" in html and "Монтаж" in html and "Сумма рассчитана по товарам" in html
    assert f"365{NBSP}000,00" in html
    assert b.get(f"/deals/{deal.id}/products").status_code == 200
    second = app.test_client()
    other = Browser(second, type(auth)(second)).login(org.m2)
    assert other.get(f"/deals/{deal.id}/products").status_code == 404
