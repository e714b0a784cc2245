"""Invoices as Bitrix24 smart invoices (``crm.item.*`` with ``entityTypeId=31``) and
``crm.productsection.update/delete``; also through the real b24pysdk and fast-bitrix24."""
from __future__ import annotations

from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.invoices import Invoice
from crm_models.services import catalog as cat
from crm_models.services.product_rows import set_product_rows
from tests.factories import SYSTEM, make_company, make_deal

from .test_clients import fast_client, run_sync, sdk_client


def _deal(db, org):
    company = make_company(db, org.m1, title="ООО «Вектор»")
    deal = make_deal(db, org.m1, company_id=company.id, currency="EUR")
    set_product_rows(db, SYSTEM, "deal", deal.id, [
        {"name": "Консалтинг", "price": "1000", "quantity": 2, "vat_rate": "20"}])
    db.commit()
    return deal, company


def test_item_add_with_parent_deal_takes_its_rows_buyer_and_currency(app, db, org, m1_hook,
                                                                      rest):
    deal, company = _deal(db, org)
    status, body = rest(m1_hook, "crm.item.add", {"entityTypeId": 31, "fields": {
        "parentId2": deal.id, "closedate": "2030-02-01T00:00:00+03:00", "ufCrmInn": "7712345678"}})
    assert status == 200, body
    item = body["result"]["item"]
    assert (item["parentId2"], item["companyId"], item["currencyId"], item["opportunity"],
            item["stageId"], item["closedate"][:10], item["ufCrmInn"]) == (
        deal.id, company.id, "EUR", 2000.0, "DT31_1:N", "2030-02-01", "7712345678")
    iid = item["id"]
    status, body = rest(m1_hook, "crm.item.update", {"entityTypeId": 31, "id": iid, "fields": {
        "productRows": [{"productName": "Аудит", "price": 500, "quantity": 3, "taxRate": 20}],
        "stageId": "DT31_1:S"}})
    assert status == 200, body
    assert (body["result"]["item"]["opportunity"], body["result"]["item"]["stageId"]) == (
        1500.0, "DT31_1:S")
    # a sent invoice is a document: its rows do not change any more
    status, body = rest(m1_hook, "crm.item.update", {"entityTypeId": 31, "id": iid, "fields": {
        "closedate": "2030-03-01"}})
    assert status == 400 and body["error"] == "ERROR_CONFLICT"
    status, body = rest(m1_hook, "crm.item.get", {"entityTypeId": 31, "id": iid})
    item = body["result"]["item"]
    assert item["title"] == f"Счёт № {item['accountNumber']}"
    db.rollback()
    types = list(db.scalars(select(OutboxEvent.event_type).where(
        OutboxEvent.entity_type == "invoice").order_by(OutboxEvent.id)))
    assert types == ["invoice.created", "invoice.updated", "invoice.stage_changed"]


def test_item_add_without_a_deal_and_bad_input(app, db, org, m1_hook, admin_hook, rest):
    company = make_company(db, org.m1)
    eur = cat.create_product(db, SYSTEM, name="Euro", price="1", currency="EUR")
    db.commit()
    status, body = rest(m1_hook, "crm.item.add", {"entityTypeId": 31, "fields": {
        "companyId": company.id, "productRows": [
            {"productName": "Работы", "price": "100.50", "quantity": 2},
            {"PRODUCT_NAME": "Выезд", "PRICE": 10}]}})
    assert status == 200, body
    assert body["result"]["item"]["opportunity"] == 211.0
    status, body = rest(m1_hook, "crm.item.add", {"entityTypeId": 31, "fields": {
        "companyId": company.id, "productRows": [{"productId": eur.id, "quantity": -2}]}})
    assert status == 400 and body["error"] == "INVALID_ARG_VALUE"
    assert "productRows[0].PRODUCT_ID" not in body["error_description"]
    assert "productRows[0].product_id" in body["error_description"]
    assert "productRows[0].quantity" in body["error_description"]
    status, body = rest(m1_hook, "crm.item.add", {"entityTypeId": 31, "fields": {
        "parentId2": 999999}})
    assert status == 400 and "parentId2" in body["error_description"]
    status, body = rest(m1_hook, "crm.item.add", {"entityTypeId": 128, "fields": {}})
    assert status == 400 and body["error"] == "NOT_FOUND"
    status, body = rest(m1_hook, "crm.item.update", {"entityTypeId": 31, "id": 1, "fields": {
        "stageId": "DT31_1:WHATEVER"}})
    assert status == 400 and "stageId" in body["error_description"]
    status, body = rest(m1_hook, "crm.item.get", {"entityTypeId": 31, "id": 424242})
    assert status == 400 and body["error"] == "NOT_FOUND"


def test_item_list_filters_and_rights(app, db, org, m1_hook, admin_hook, rest):
    deal, _company = _deal(db, org)
    other = make_deal(db, org.m2)
    set_product_rows(db, SYSTEM, "deal", other.id, [{"name": "x", "price": "5"}])
    db.commit()
    for d in (deal, deal, other):
        assert rest(admin_hook, "crm.item.add", {"entityTypeId": 31,
                                                 "fields": {"parentId2": d.id}})[0] == 200
    _s, body = rest(admin_hook, "crm.item.list", {"entityTypeId": 31})
    assert body["total"] == 3 and len(body["result"]["items"]) == 3
    _s, body = rest(admin_hook, "crm.item.list", {"entityTypeId": 31,
                                                  "filter": {"parentId2": deal.id}})
    assert body["total"] == 2
    # m1 ("own") sees the invoices of her deal only
    _s, body = rest(m1_hook, "crm.item.list", {"entityTypeId": 31})
    assert {i["parentId2"] for i in body["result"]["items"]} == {deal.id}
    status, body = rest(admin_hook, "crm.item.list", {"entityTypeId": 31,
                                                      "filter": {"title": "x"}})
    assert status == 400


def test_smart_invoices_with_both_clients(app, db, org, admin_hook, tls_server):
    deal, company = _deal(db, org)
    client = sdk_client(tls_server, admin_hook)
    added = client.crm.item.add(entity_type_id=31, fields={"parentId2": deal.id}).result
    iid = added["item"]["id"]
    assert added["item"]["companyId"] == company.id
    got = client.crm.item.get(entity_type_id=31, bitrix_id=iid).result["item"]
    assert got["opportunity"] == 2000.0
    client.crm.item.update(entity_type_id=31, bitrix_id=iid,
                           fields={"stageId": "DT31_1:S"}).call()
    for _ in range(59):
        client.crm.item.add(entity_type_id=31, fields={"parentId2": deal.id}).call()
    every = client.crm.item.list(entity_type_id=31).as_list().result
    assert len(every) == 60 and len({i["id"] for i in every}) == 60
    b = fast_client(tls_server, admin_hook)
    fetched = run_sync(lambda: b.get_all("crm.item.list", {"entityTypeId": 31}))
    assert sorted(i["id"] for i in fetched) == sorted(i["id"] for i in every)
    db.rollback()
    assert db.get(Invoice, iid).stage == "sent"


def test_product_section_update_and_delete(app, db, org, admin_hook, m1_hook, rest):
    top = rest(admin_hook, "crm.productsection.add", {"fields": {"NAME": "Станки"}})[1]["result"]
    sub = rest(admin_hook, "crm.productsection.add", {"fields": {"NAME": "ЧПУ",
                                                                 "SECTION_ID": top}})[1]["result"]
    status, body = rest(admin_hook, "crm.productsection.update", {"id": sub, "fields": {
        "NAME": "Станки ЧПУ", "SECTION_ID": 0}})
    assert status == 200 and body["result"] is True
    _s, body = rest(admin_hook, "crm.productsection.get", {"id": sub})
    assert (body["result"]["NAME"], body["result"]["SECTION_ID"]) == ("Станки ЧПУ", None)
    status, body = rest(admin_hook, "crm.productsection.update", {"id": top, "fields": {
        "NAME": ""}})
    assert status == 400 and "NAME" in body["error_description"]
    status, body = rest(admin_hook, "crm.productsection.update", {"id": top, "fields": {
        "SECTION_ID": top}})
    assert status == 400 and "SECTION_ID" in body["error_description"]
    assert rest(m1_hook, "crm.productsection.delete", {"id": top})[0] == 400  # no right
    rest(admin_hook, "crm.product.add", {"fields": {"NAME": "Фреза", "SECTION_ID": top}})
    status, body = rest(admin_hook, "crm.productsection.delete", {"id": top})
    assert status == 400 and "products" in body["error_description"]
    assert rest(admin_hook, "crm.productsection.delete", {"id": sub})[1]["result"] is True
    assert rest(admin_hook, "crm.productsection.get", {"id": sub})[0] == 400
