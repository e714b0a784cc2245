"""Online-store orders: idempotent intake, contact dedup, SKU → catalog, unknown SKUs as free
rows with a warning, order.received, the large-deal rule, the file formats, bad input."""
from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from crm_models.catalog import ProductRow
from crm_models.entities import Contact, Deal
from crm_models.services import catalog as cat
from crm_models.services import create_contact
from integrations.imports.models import StoreOrder
from tests.automation.support import api_as, instances_of, service_process
from tests.factories import SYSTEM

ORDER = {
    "store": "shop.example.ru", "number": "A-1001",
    "customer": {"name": "Иван Петров", "phone": "8 (916) 555-01-02",
                 "email": "ivan@example.ru"},
    "items": [{"sku": "CNC-450", "quantity": 3},
              {"sku": "GIFT-1", "name": "Подарочная упаковка", "quantity": 1,
               "price": "500.00"}],
}


def test_an_order_becomes_a_routed_deal_once(app, db, demo, engine) -> None:
    machine = cat.create_product(db, SYSTEM, name="Станок ЧПУ", sku="CNC-450",
                                 price="450000.00", vat_rate="20")
    known = create_contact(db, SYSTEM, first_name="Иван", phones=["+7 916 555 01 02"],
                           responsible_id=demo.m1.id)
    engine.deploy(db, service_process("on_order", message="order.received",
                                      params={"text": "Заказ получен"}))
    db.commit()
    api = api_as(app, db, "manager1@demo.local")
    r = api.post("/api/v1/orders", json=ORDER)
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    assert out["created"] is True and out["contact_id"] == known.id
    assert out["warnings"] == ["items[1]: unknown SKU 'GIFT-1', added as a free row"]
    db.rollback()
    db.expire_all()
    deal = db.get(Deal, out["deal_id"])
    assert deal.amount == Decimal("1350500.00") and [c.id for c in deal.contacts] == [known.id]
    rows = db.scalars(select(ProductRow).where(ProductRow.entity_id == deal.id)
                      .order_by(ProductRow.sort)).all()
    assert [(r.product_id, r.name) for r in rows] == [(machine.id, "Станок ЧПУ"),
                                                      (None, "Подарочная упаковка")]
    assert deal.responsible_id == demo.corporate.id  # the large-deal rule applied
    assert len(instances_of(db, "on_order", entity_id=deal.id)) == 1  # order.received
    # the same order again: nothing new
    again = api.post("/api/v1/orders", json=ORDER)
    assert again.status_code == 200 and again.get_json()["deal_id"] == deal.id
    assert again.get_json()["created"] is False
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Deal).where(
        Deal.title.like("Заказ A-1001%"))) == 1
    assert db.scalar(select(func.count()).select_from(Contact).where(
        Contact.first_name == "Иван")) == 1


def test_bad_orders_are_refused_naming_the_field(app, db, demo) -> None:
    api = api_as(app, db, "manager1@demo.local")
    r = api.post("/api/v1/orders", json={"store": "s", "number": "1", "customer": {},
                                         "items": [{"quantity": 1}, "x"], "extra": 1})
    assert r.status_code == 422
    fields = r.get_json()["error"]["fields"]
    assert fields == {"extra": "is not a field of an order",
                      "items[0].sku": "an item needs a SKU or a name",
                      "items[1]": "must be an object with sku, name, quantity, price"}
    r = api.post("/api/v1/orders", json={"store": "s", "number": "2",
                                         "customer": {"email": "a@b.example"},
                                         "items": [{"sku": "NOPE", "quantity": "x"}]})
    assert r.status_code == 422
    assert "items[0].price" in r.get_json()["error"]["fields"]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(StoreOrder)) == 0
    assert api.post("/api/v1/orders", data="not json",
                    headers={"Content-Type": "application/json"}).status_code == 400


def test_orders_from_csv_and_json_files(app, db, demo) -> None:
    cat.create_product(db, SYSTEM, name="Фреза", sku="F-1", price="1000.00")
    db.commit()
    api = api_as(app, db, "manager1@demo.local")
    csv_text = ("store;number;customer;phone;email;sku;name;quantity;price\n"
                "shop;B-1;Ольга;+7 495 000 00 01;;F-1;;2;\n"
                "shop;B-1;Ольга;+7 495 000 00 01;;X-9;Сверло;1;150,50\n"
                "shop;B-2;Пётр;;;F-1;;1;\n")
    r = api.post("/api/v1/orders/file", data={
        "file": (io.BytesIO(csv_text.encode("cp1251")), "orders.csv")},
        content_type="multipart/form-data")
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    assert [o["number"] for o in out["orders"]] == ["B-1"]
    assert out["errors"][0]["number"] == "B-2"  # no phone nor e-mail
    db.rollback()
    deal = db.get(Deal, out["orders"][0]["deal_id"])
    assert deal.amount == Decimal("2150.50")
    json_text = ('[{"store": "shop", "number": "B-1", "customer": {"phone": "+7 495 000 00 01"},'
                 ' "items": [{"sku": "F-1", "quantity": 5}]}, {"store": "shop"}]')
    r = api.post("/api/v1/orders/file", data={"file": (io.BytesIO(json_text.encode()), "o.json")},
                 content_type="multipart/form-data")
    out = r.get_json()
    # already taken: the first result, unchanged; the second order lacks its fields
    assert [(o["deal_id"], o["created"]) for o in out["orders"]] == [(deal.id, False)]
    assert out["errors"][0]["index"] == 1 and "number" in out["errors"][0]["fields"]
    r = api.post("/api/v1/orders/file", data={"file": (io.BytesIO(b"{broken"), "o.json")},
                 content_type="multipart/form-data")
    assert r.status_code == 422 and "broken JSON" in r.get_json()["error"]["fields"]["file"]


def test_the_order_payload_is_documented_with_an_example(app, db, demo) -> None:
    api = api_as(app, db, "manager1@demo.local")
    doc: Any = api.get("/api/v1/openapi.json").get_json()
    schema = doc["components"]["schemas"]["StoreOrderInput"]
    assert schema["examples"][0]["number"] == "A-1001"
    assert "/api/v1/orders" in doc["paths"]
