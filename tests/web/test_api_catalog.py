"""``/api/v1/products`` and ``/api/v1/product-sections``: rights, field errors, the document."""
from __future__ import annotations

from crm_models.org import PermLevel
from crm_models.services.org import save_role
from tests.factories import SYSTEM, role

from .api_support import (  # noqa: F401  (fast_passwords: an autouse fixture)
    api_for,
    error_of,
    fast_passwords,
    outbox_types,
)


def test_products_crud_over_rest(app, db, org):
    admin = api_for(app, db, org.admin)
    r = admin.post("/api/v1/product-sections", json={"name": "Услуги"})
    assert r.status_code == 201, r.get_json()
    section_id = r.get_json()["id"]
    r = admin.post("/api/v1/products", json={
        "name": "Внедрение CRM", "sku": "IMPL", "price": "150000.00", "vat_rate": "20",
        "vat_included": True, "unit": "service", "section_id": section_id})
    assert r.status_code == 201, r.get_json()
    product = r.get_json()
    assert r.headers["Location"].endswith(f"/api/v1/products/{product['id']}")
    assert product["price"] == "150000.00" and product["currency"] == "RUB"
    assert product["active"] is True
    r = admin.patch(f"/api/v1/products/{product['id']}", json={"price": 160000})
    assert r.get_json()["price"] == "160000.00"
    r = admin.get("/api/v1/products", query_string={"q": "crm", "section_id": section_id})
    assert [p["id"] for p in r.get_json()["items"]] == [product["id"]]
    assert r.get_json()["total"] == 1
    assert admin.delete(f"/api/v1/products/{product['id']}").status_code == 204
    assert admin.get(f"/api/v1/products/{product['id']}").status_code == 404
    assert outbox_types(db, "product") == ["product.created", "product.updated",
                                           "product.deleted"]
    assert [s["name"] for s in admin.get("/api/v1/product-sections").get_json()["items"]] == [
        "Услуги"]


def test_manager_needs_the_right_granted_on_the_role(app, db, org):
    m1 = api_for(app, db, org.m1)
    r = m1.post("/api/v1/products", json={"name": "Товар", "price": "10"})
    assert r.status_code == 403
    assert error_of(r)["code"] == "forbidden"
    assert m1.get("/api/v1/products").status_code == 200  # read: all
    save_role(db, SYSTEM, role(db, "manager").id,
              levels={("product", "add"): int(PermLevel.ALL),
                      ("product", "update"): int(PermLevel.ALL)})
    db.commit()
    r = m1.post("/api/v1/products", json={"name": "Товар", "price": "10"})
    assert r.status_code == 201, r.get_json()
    assert m1.delete(f"/api/v1/products/{r.get_json()['id']}").status_code == 403


def test_bad_input_names_the_field(app, db, org):
    admin = api_for(app, db, org.admin)
    r = admin.post("/api/v1/products", json={"name": "X", "price": "-1", "vat_rate": "18",
                                             "section_id": 777, "actor": "me"})
    assert r.status_code == 422
    fields = error_of(r)["fields"]
    assert set(fields) == {"price", "vat_rate", "actor"}  # refused before the service runs
    r = admin.post("/api/v1/products", json={"name": "X", "section_id": 777})
    assert error_of(r)["fields"] == {"section_id": "no product section with id 777"}
    r = admin.post("/api/v1/products", json={"price": "1"})
    assert error_of(r)["fields"] == {"name": "is required"}
    r = admin.get("/api/v1/products", query_string={"section_id": "abc", "colour": "red"})
    assert r.status_code == 422
    assert set(error_of(r)["fields"]) == {"colour"}
    r = admin.get("/api/v1/products", query_string={"section_id": "abc"})
    assert set(error_of(r)["fields"]) == {"section_id"}
    r = admin.post("/api/v1/product-sections", json={"name": "A", "parent_id": 5})
    assert error_of(r)["fields"] == {"parent_id": "no product section with id 5"}


def test_catalog_is_in_the_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/products", "/api/v1/products/{product_id}",
                 "/api/v1/product-sections", "/api/v1/product-sections/{section_id}"):
        assert path in doc["paths"], path
    schemas = doc["components"]["schemas"]
    assert schemas["Product"]["properties"]["vat_rate"]["enum"] == ["20", "10", "0", "none", ""]
    assert schemas["ProductCreate"]["required"] == ["name"]
    assert "hour" in schemas["ProductCreate"]["properties"]["unit"]["enum"]
    post = doc["paths"]["/api/v1/products"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProductCreate"}
    names = {p["name"] for p in doc["paths"]["/api/v1/products"]["get"]["parameters"]}
    assert {"q", "section_id", "active", "page"} <= names


def test_deal_product_rows_over_rest(app, db, org):
    admin = api_for(app, db, org.admin)
    pid = admin.post("/api/v1/products", json={"name": "Станок", "price": "1000",
                                               "vat_rate": "20"}).get_json()["id"]
    usd = admin.post("/api/v1/products", json={"name": "Licence", "price": "1",
                                               "currency": "USD"}).get_json()["id"]
    m1 = api_for(app, db, org.m1)
    deal = m1.post("/api/v1/deals", json={"title": "Станки", "amount": "1"}).get_json()
    path = f"/api/v1/deals/{deal['id']}/product-rows"
    got = m1.get(path).get_json()
    assert (got["rows"], got["amount"], got["amount_from_rows"]) == ([], "1.00", False)
    r = m1.put(path, json={"rows": [
        {"product_id": pid, "quantity": "2.5", "discount_type": "amount", "discount": "100"},
        {"name": "Доставка", "price": 500, "quantity": 1, "vat_rate": "none"}]})
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    assert out["amount"] == out["total"] == "2750.00" and out["amount_from_rows"] is True
    assert out["vat"] == "375.00"
    assert [(x["name"], x["quantity"], x["total"]) for x in out["rows"]] == [
        ("Станок", "2.5", "2250.00"), ("Доставка", "1", "500.00")]
    assert m1.get(f"/api/v1/deals/{deal['id']}").get_json()["amount"] == "2750.00"
    r = m1.put(path, json={"rows": [{"product_id": 424242, "quantity": -1},
                                    {"product_id": usd}]})
    assert r.status_code == 422
    assert error_of(r)["fields"] == {
        "rows[0].product_id": "no product with id 424242",
        "rows[0].quantity": "must be greater than zero",
        "rows[1].product_id": "the product is priced in USD, the record in RUB"}
    r = m1.put(path, json={"rows": [], "extra": 1})
    assert set(error_of(r)["fields"]) == {"extra"}
    m2 = api_for(app, db, org.m2)
    assert m2.get(path).status_code == 404
    assert m2.put(path, json={"rows": []}).status_code == 404
    lead = m1.post("/api/v1/leads", json={"title": "Запрос"}).get_json()
    r = m1.put(f"/api/v1/leads/{lead['id']}/product-rows",
               json={"rows": [{"product_id": pid, "quantity": 3}]})
    assert r.get_json()["amount"] == "3000.00"
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    put = doc["paths"]["/api/v1/deals/{record_id}/product-rows"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProductRowsInput"}
    assert "get" in doc["paths"]["/api/v1/leads/{record_id}/product-rows"]
