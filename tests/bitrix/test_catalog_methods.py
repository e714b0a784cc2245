"""``crm.product.*``, ``crm.productsection.*`` and ``crm.deal.productrows.get/set`` with
Bitrix24 names, over the same services (rights, validation, events)."""
from __future__ import annotations

from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.entities import Deal
from tests.factories import make_deal


def test_product_round_trip(app, org, db, admin_hook, rest):
    status, body = rest(admin_hook, "crm.productsection.add", {"fields": {"NAME": "Станки"}})
    assert status == 200, body
    section = body["result"]
    status, body = rest(admin_hook, "crm.product.add", {"fields": {
        "NAME": "Станок ЧПУ", "CODE": "CNC-1", "PRICE": 450000, "CURRENCY_ID": "RUB",
        "VAT_RATE": 20, "VAT_INCLUDED": "Y", "MEASURE": "pcs", "SECTION_ID": section,
        "ACTIVE": "Y", "XML_ID": "ignored"}})
    assert status == 200, body
    pid = body["result"]
    _s, got = rest(admin_hook, "crm.product.get", {"id": pid})
    p = got["result"]
    assert (p["NAME"], p["CODE"], p["PRICE"], p["VAT_RATE"], p["VAT_INCLUDED"]) == (
        "Станок ЧПУ", "CNC-1", "450000.00", "20", "Y")
    assert (p["SECTION_ID"], p["MEASURE_NAME"]) == (str(section), "шт.")
    assert rest(admin_hook, "crm.product.update", {"id": pid, "fields": {"PRICE": "460000"}}
                )[1]["result"] is True
    _s, listed = rest(admin_hook, "crm.product.list", {"filter": {"SECTION_ID": section}})
    assert [x["PRICE"] for x in listed["result"]] == ["460000.00"] and listed["total"] == 1
    _s, fields = rest(admin_hook, "crm.product.fields")
    assert fields["result"]["NAME"]["isRequired"] is True
    status, body = rest(admin_hook, "crm.product.add", {"fields": {"NAME": "X", "VAT_RATE": 18,
                                                                   "PRICE": -1}})
    assert status == 400 and body["error"] == ""
    assert "VAT_RATE" in body["error_description"] and "PRICE" in body["error_description"]
    assert rest(admin_hook, "crm.product.delete", {"id": pid})[1]["result"] is True
    assert rest(admin_hook, "crm.product.get", {"id": pid})[0] == 400
    db.rollback()
    assert list(db.scalars(select(OutboxEvent.event_type).where(
        OutboxEvent.entity_type == "product").order_by(OutboxEvent.id))) == [
        "product.created", "product.updated", "product.deleted"]


def test_a_manager_cannot_add_products(app, org, db, m1_hook, rest):
    status, body = rest(m1_hook, "crm.product.add", {"fields": {"NAME": "X"}})
    assert status == 400 and body["error_description"].startswith("Access denied.")


def test_deal_product_rows(app, org, db, admin_hook, m1_hook, rest):
    deal = make_deal(db, org.m1, amount="1")
    db.commit()
    _s, body = rest(admin_hook, "crm.product.add", {"fields": {"NAME": "Станок",
                                                               "PRICE": 1000, "VAT_RATE": 20}})
    pid = body["result"]
    status, body = rest(m1_hook, "crm.deal.productrows.set", {"id": deal.id, "rows": [
        {"PRODUCT_ID": pid, "QUANTITY": 2, "DISCOUNT_TYPE_ID": 2, "DISCOUNT_RATE": 10},
        {"PRODUCT_NAME": "Доставка", "PRICE": 400, "QUANTITY": 1, "DISCOUNT_TYPE_ID": 1,
         "DISCOUNT_SUM": 100, "TAX_RATE": None}]})
    assert status == 200, body
    _s, body = rest(m1_hook, "crm.deal.productrows.get", {"id": deal.id})
    rows = body["result"]
    assert [(r["PRODUCT_NAME"], r["PRICE"], r["PRICE_NETTO"], r["QUANTITY"], r["SUM"])
            for r in rows] == [("Станок", "900.00", "1000.00", "2", "1800.00"),
                               ("Доставка", "400.00", "500.00", "1", "400.00")]
    assert rows[0]["TAX_RATE"] == "20" and rows[1]["TAX_RATE"] is None
    db.rollback()
    assert str(db.get(Deal, deal.id).amount) == "2200.00"
    status, body = rest(m1_hook, "crm.deal.productrows.set", {"id": deal.id, "rows": [
        {"PRODUCT_ID": 99999, "QUANTITY": -1}]})
    assert status == 400
    assert "rows[0].PRODUCT_ID" in body["error_description"]
    assert "rows[0].QUANTITY" in body["error_description"]


def test_product_events_go_to_outgoing_webhooks(app, org, db, admin_hook, rest, receiver):
    from integrations.outgoing import register_handler
    from tests.factories import SYSTEM

    from .test_outgoing import worker

    for event in ("ONCRMPRODUCTADD", "ONCRMPRODUCTUPDATE", "ONCRMPRODUCTDELETE"):
        register_handler(db, SYSTEM, event=event, url=receiver.url, guard=receiver.guard)
    db.commit()
    pid = rest(admin_hook, "crm.product.add", {"fields": {"NAME": "Станок"}})[1]["result"]
    rest(admin_hook, "crm.product.update", {"id": pid, "fields": {"PRICE": 5}})
    rest(admin_hook, "crm.product.delete", {"id": pid})
    db.rollback()
    assert worker(app, receiver).run_once() == (3, 3)
    assert [(p["event"], p["data[FIELDS][ID]"]) for p in receiver.posts] == [
        ("ONCRMPRODUCTADD", str(pid)), ("ONCRMPRODUCTUPDATE", str(pid)),
        ("ONCRMPRODUCTDELETE", str(pid))]
