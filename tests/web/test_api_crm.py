"""CRM records through /api/v1: CRUD round trips, stages, conversion, lists, timeline."""
from __future__ import annotations

from decimal import Decimal

import pytest

from crm_models.activity import OutboxEvent
from crm_models.entities import Company, Contact, Deal, Lead

from ..factories import make_company, make_contact, make_deal, make_lead
from .api_support import (  # noqa: F401  (fast_passwords: an autouse fixture)
    api_for,
    error_of,
    fast_passwords,
    outbox_types,
    row_counts,
)

PHONES = [{"value": "+7 495 123-45-67", "value_type": "WORK"},
          {"value": "+7 999 000-11-22", "value_type": "MOBILE"}]
EMAILS = [{"value": "info@romashka.ru", "value_type": "WORK"},
          {"value": "boss@romashka.ru", "value_type": "HOME"}]


@pytest.fixture()
def api(app, db, org):
    return api_for(app, db, org.m1)


def test_company_round_trip_with_phones_and_emails(api, db, org):
    r = api.post("/api/v1/companies", json={
        "title": "ООО Ромашка", "industry": "IT", "address": "Москва",
        "phones": PHONES, "emails": ["info@romashka.ru", {"value": "boss@romashka.ru",
                                                          "value_type": "home"}]})
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    cid = created["id"]
    assert r.headers["Location"].endswith(f"/api/v1/companies/{cid}")
    assert created["phones"] == PHONES
    assert created["emails"] == EMAILS
    assert created["responsible_id"] == org.m1.id and created["created_by_id"] == org.m1.id
    assert "search_text" not in created

    got = api.get(f"/api/v1/companies/{cid}").get_json()
    assert got == created

    r = api.patch(f"/api/v1/companies/{cid}", json={"phones": [PHONES[1]], "industry": "Retail"})
    assert r.status_code == 200
    assert r.get_json()["phones"] == [PHONES[1]]
    assert r.get_json()["emails"] == EMAILS  # untouched by a partial update
    db.rollback()
    assert db.get(Company, cid).industry == "Retail"

    # Cyrillic search, case-insensitive on every backend
    listed = api.get("/api/v1/companies", query_string={"q": "ромашка"}).get_json()
    assert [c["id"] for c in listed["items"]] == [cid] and listed["total"] == 1
    assert api.get("/api/v1/companies", query_string={"q": "4951234567"}).get_json()["total"] == 0
    assert api.get("/api/v1/companies", query_string={"q": "9990001122"}).get_json()["total"] == 1

    r = api.delete(f"/api/v1/companies/{cid}")
    assert r.status_code == 204 and r.get_data() == b""
    assert api.get(f"/api/v1/companies/{cid}").status_code == 404
    assert outbox_types(db, "company") == ["company.created", "company.updated",
                                           "company.deleted"]


def test_contact_round_trip_linked_to_company(api, db, org):
    company = api.post("/api/v1/companies", json={"title": "Acme"}).get_json()
    r = api.post("/api/v1/contacts", json={
        "first_name": "Иван", "last_name": "Петров", "position": "CEO",
        "company_id": company["id"], "phones": PHONES, "emails": EMAILS, "opened": False})
    assert r.status_code == 201, r.get_json()
    contact = r.get_json()
    assert contact["full_name"] == "Иван Петров"
    assert contact["company_id"] == company["id"] and contact["opened"] is False
    assert contact["phones"] == PHONES and contact["emails"] == EMAILS

    # PUT is an alias for a partial update
    r = api.put(f"/api/v1/contacts/{contact['id']}", json={"position": "CFO", "emails": []})
    assert r.status_code == 200
    assert r.get_json()["position"] == "CFO" and r.get_json()["emails"] == []
    assert r.get_json()["phones"] == PHONES

    by_company = api.get("/api/v1/contacts", query_string={"company_id": company["id"]})
    assert [c["id"] for c in by_company.get_json()["items"]] == [contact["id"]]
    db.rollback()
    assert db.get(Contact, contact["id"]).company_id == company["id"]


def test_lead_round_trip_all_fields(api, db, org):
    body = {"title": "Сайт: заявка", "first_name": "Анна", "last_name": "Смирнова",
            "company_title": "ООО Вектор", "source": "WEB", "amount": "150000.50",
            "currency": "eur", "phones": PHONES, "emails": EMAILS, "comments": "перезвонить",
            "opened": True}
    r = api.post("/api/v1/leads", json=body)
    assert r.status_code == 201, r.get_json()
    lead = r.get_json()
    assert lead["status"] == "NEW" and lead["amount"] == "150000.50"
    assert lead["currency"] == "EUR" and lead["source"] == "WEB"
    for key in ("title", "first_name", "last_name", "company_title", "phones", "emails",
                "comments"):
        assert lead[key] == body[key]
    r = api.patch(f"/api/v1/leads/{lead['id']}", json={"status": "IN_PROCESS", "amount": 99})
    assert r.status_code == 200
    assert r.get_json()["status"] == "IN_PROCESS" and r.get_json()["amount"] == "99.00"
    db.rollback()
    assert db.get(Lead, lead["id"]).amount == Decimal("99.00")
    # CONVERTED only by converting
    r = api.patch(f"/api/v1/leads/{lead['id']}", json={"status": "CONVERTED"})
    assert r.status_code == 422 and "status" in error_of(r)["fields"]


def test_deal_round_trip_with_contacts_and_amount(api, db, org):
    c1 = make_contact(db, org.m1)
    c2 = make_contact(db, org.m1)
    db.commit()
    r = api.post("/api/v1/deals", json={
        "title": "Поставка", "amount": 2500000, "currency": "RUB", "probability": 40,
        "contact_ids": [c1.id, c2.id], "close_date": "2031-12-31", "source": "CALL"})
    assert r.status_code == 201, r.get_json()
    deal = r.get_json()
    assert deal["amount"] == "2500000.00"  # a number in, a decimal string out
    assert deal["contact_ids"] == [c1.id, c2.id]
    assert deal["pipeline_id"] == 0 and deal["stage"] == "NEW"
    assert deal["stage_semantics"] == "process" and deal["close_date"] == "2031-12-31"

    r = api.patch(f"/api/v1/deals/{deal['id']}", json={"contact_ids": [c2.id],
                                                       "amount": "1 000,5"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["contact_ids"] == [c2.id] and r.get_json()["amount"] == "1000.50"
    db.rollback()
    assert [c.id for c in db.get(Deal, deal["id"]).contacts] == [c2.id]
    # contact filter on the deal list
    assert api.get("/api/v1/deals", query_string={"contact_ids": c2.id}).get_json()["total"] == 1
    assert api.get("/api/v1/deals", query_string={"contact_ids": c1.id}).get_json()["total"] == 0


def test_deal_stage_changes(api, db, org):
    deal = make_deal(db, org.m1, amount="10.00")
    db.commit()
    r = api.post(f"/api/v1/deals/{deal.id}/stage", json={"stage": "EXECUTING"})
    assert r.status_code == 200 and r.get_json()["stage"] == "EXECUTING"
    r = api.post(f"/api/v1/deals/{deal.id}/stage", json={"stage": "WON"})
    assert r.get_json()["stage"] == "WON" and r.get_json()["stage_semantics"] == "won"
    db.rollback()
    moves = [e.payload for e in db.query(OutboxEvent).filter_by(
        event_type="deal.stage_changed", entity_id=deal.id).order_by(OutboxEvent.id)]
    assert [(m["from"], m["to"]) for m in moves] == [("NEW", "EXECUTING"), ("EXECUTING", "WON")]
    assert moves[-1]["semantics"] == "won"

    before = row_counts(db)
    for bad in ({"stage": "NOPE"}, {"stage": ""}, {"stage": 5}, {}):
        r = api.post(f"/api/v1/deals/{deal.id}/stage", json=bad)
        assert r.status_code == 422, (bad, r.get_json())
        assert "stage" in error_of(r)["fields"]
    r = api.post(f"/api/v1/deals/{deal.id}/stage", json={"stage": "WON", "x": 1})
    assert r.status_code == 422 and "x" in error_of(r)["fields"]
    assert row_counts(db) == before
    assert api.post("/api/v1/deals/999999/stage", json={"stage": "WON"}).status_code == 404


def test_lead_conversion_carries_every_field(api, db, org):
    lead = make_lead(db, org.m1, title="Заявка с сайта", first_name="Анна",
                     last_name="Смирнова", company_title="ООО Вектор", source="WEB",
                     amount="250000.00", currency="USD", phones=PHONES, emails=EMAILS,
                     opened=False)
    db.commit()
    preview = api.get(f"/api/v1/leads/{lead.id}/conversion-preview")
    assert preview.status_code == 200
    p = preview.get_json()
    assert p["contact"]["last_name"] == "Смирнова" and p["company"]["title"] == "ООО Вектор"
    assert p["deal"]["amount"] == "250000.00"
    assert row_counts(db)["deal"] == 0  # a preview writes nothing

    r = api.post(f"/api/v1/leads/{lead.id}/convert")  # no body at all is fine
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    contact, company, deal, lead_out = out["contact"], out["company"], out["deal"], out["lead"]
    assert (out["contact_id"], out["company_id"], out["deal_id"]) == (
        contact["id"], company["id"], deal["id"])
    assert (contact["first_name"], contact["last_name"]) == ("Анна", "Смирнова")
    assert contact["phones"] == PHONES and contact["emails"] == EMAILS
    assert contact["company_id"] == company["id"]
    assert company["title"] == "ООО Вектор"
    assert deal["title"] == "Заявка с сайта" and deal["amount"] == "250000.00"
    assert deal["currency"] == "USD" and deal["source"] == "WEB"
    assert deal["contact_ids"] == [contact["id"]] and deal["company_id"] == company["id"]
    for record in (contact, company, deal):
        assert record["responsible_id"] == org.m1.id and record["opened"] is False
    assert deal["lead_id"] == lead.id
    assert lead_out["status"] == "CONVERTED"
    assert (lead_out["deal_id"], lead_out["contact_id"], lead_out["company_id"]) == (
        deal["id"], contact["id"], company["id"])
    db.rollback()
    assert db.get(Contact, contact["id"]).lead_id == lead.id
    assert db.get(Company, company["id"]).lead_id == lead.id
    assert "lead.converted" in outbox_types(db, "lead")

    again = api.post(f"/api/v1/leads/{lead.id}/convert", json={})
    assert again.status_code == 422 and "status" in error_of(again)["fields"]


def test_conversion_with_deal_overrides_and_bad_overrides(api, db, org):
    lead = make_lead(db, org.m1, last_name="Solo", amount="5.00")
    db.commit()
    before = row_counts(db)
    for bad, field in (({"deal": "x"}, "deal"), ({"deal": {"stage": "NOPE"}}, "stage"),
                       ({"deal": {"amount": "abc"}}, "amount"), ({"contact": {}}, "contact")):
        r = api.post(f"/api/v1/leads/{lead.id}/convert", json=bad)
        assert r.status_code == 422, (bad, r.get_json())
        assert field in error_of(r)["fields"]
    assert row_counts(db) == before  # nothing half-converted
    r = api.post(f"/api/v1/leads/{lead.id}/convert",
                 json={"deal": {"title": "Переопределено", "stage": "PREPARATION"}})
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    assert out["deal"]["title"] == "Переопределено" and out["deal"]["stage"] == "PREPARATION"
    assert out["company"] is None and out["company_id"] is None
    assert out["contact"]["last_name"] == "Solo"


def test_list_pagination_sort_and_filters(api, db, org):
    amounts = ["100.00", "2500000.00", "50.00", "700.00", None]
    deals = [make_deal(db, org.m1, title=f"Bulk {i}", amount=a) for i, a in enumerate(amounts)]
    make_deal(db, org.m1, title="Won one", stage="WON", amount="1.00")
    db.commit()

    r = api.get("/api/v1/deals", query_string={"per_page": 2, "page": 2, "sort": "id"})
    body = r.get_json()
    assert (body["total"], body["page"], body["per_page"]) == (6, 2, 2)
    assert [d["id"] for d in body["items"]] == [deals[2].id, deals[3].id]
    assert api.get("/api/v1/deals", query_string={"page": 9}).get_json()["items"] == []
    assert api.get("/api/v1/deals").get_json()["per_page"] == 50

    by_amount = api.get("/api/v1/deals", query_string={"sort": "-amount", "title__contains":
                                                       "bulk"}).get_json()["items"]
    assert [d["amount"] for d in by_amount][:4] == ["2500000.00", "700.00", "100.00", "50.00"]

    gte = api.get("/api/v1/deals", query_string={"amount__gte": "100", "sort": "amount"})
    assert [d["amount"] for d in gte.get_json()["items"]] == ["100.00", "700.00", "2500000.00"]
    assert api.get("/api/v1/deals", query_string={"amount__lt": 60}).get_json()["total"] == 2
    assert api.get("/api/v1/deals", query_string={"stage": "WON"}).get_json()["total"] == 1
    assert api.get("/api/v1/deals",
                   query_string={"stage__ne": "WON"}).get_json()["total"] == 5
    # __in by comma list and by repetition
    assert api.get("/api/v1/deals?stage__in=WON,NEW").get_json()["total"] == 6
    assert api.get(f"/api/v1/deals?id__in={deals[0].id}&id__in={deals[1].id}"
                   ).get_json()["total"] == 2
    assert api.get("/api/v1/deals", query_string={"q": "won"}).get_json()["total"] == 1
    assert api.get("/api/v1/deals", query_string={
        "responsible_id": org.m1.id, "created_at__gte": "2000-01-01T00:00:00"}
    ).get_json()["total"] == 6


def test_comments_and_activities(api, db, org):
    deal = make_deal(db, org.m1)
    db.commit()
    base = f"/api/v1/deals/{deal.id}"
    r = api.post(f"{base}/comments", json={"text": "  Клиент просит скидку  "})
    assert r.status_code == 201
    assert r.get_json()["text"] == "Клиент просит скидку"
    assert r.get_json()["author_id"] == org.m1.id
    assert [c["text"] for c in api.get(f"{base}/comments").get_json()["items"]] == [
        "Клиент просит скидку"]

    r = api.post(f"{base}/activities", json={"type": "call", "subject": "Позвонить",
                                             "due_at": "2031-01-10T10:00:00+03:00"})
    assert r.status_code == 201, r.get_json()
    act = r.get_json()
    assert act["due_at"] == "2031-01-10T07:00:00+00:00" and act["responsible_id"] == org.m1.id
    assert act["done"] is False
    items = api.get(f"{base}/activities").get_json()["items"]
    assert [a["id"] for a in items] == [act["id"]]
    done = api.post(f"/api/v1/activities/{act['id']}/complete")
    assert done.status_code == 200 and done.get_json()["done"] is True
    assert api.post("/api/v1/activities/999999/complete").status_code == 404

    before = row_counts(db)
    for bad, field in (({"text": ""}, "text"), ({"text": 5}, "text"),
                       ({"text": "x", "author_id": 1}, "author_id")):
        r = api.post(f"{base}/comments", json=bad)
        assert r.status_code == 422 and field in error_of(r)["fields"], bad
    for bad, field in (({"type": "fax", "subject": "x"}, "type"),
                       ({"type": "call", "subject": ""}, "subject"),
                       ({"type": "call", "subject": "x", "due_at": "tomorrow"}, "due_at"),
                       ({"type": "call", "subject": "x", "due_at": "2031-01-01T10:00"}, "due_at"),
                       ({"type": "call", "subject": "x", "responsible_id": "x"},
                        "responsible_id"),
                       ({"type": "call", "subject": "x", "responsible_id": 999999},
                        "responsible_id")):
        r = api.post(f"{base}/activities", json=bad)
        assert r.status_code == 422 and field in error_of(r)["fields"], (bad, r.get_json())
    assert row_counts(db) == before
    for entity, plural in (("lead", "leads"), ("contact", "contacts"), ("company", "companies")):
        maker = {"lead": make_lead, "contact": make_contact, "company": make_company}[entity]
        rec = maker(db, org.m1)
        db.commit()
        assert api.post(f"/api/v1/{plural}/{rec.id}/comments", json={"text": "hi"}
                        ).status_code == 201
        assert len(api.get(f"/api/v1/{plural}/{rec.id}/comments").get_json()["items"]) == 1


def test_pipelines_and_field_schemas(api):
    pipelines = api.get("/api/v1/pipelines").get_json()["items"]
    assert pipelines[0]["id"] == 0
    codes = [s["code"] for s in pipelines[0]["stages"]]
    assert codes[0] == "NEW" and "WON" in codes and "LOSE" in codes
    won = next(s for s in pipelines[0]["stages"] if s["code"] == "WON")
    assert won["semantics"] == "won" and won["name_en"] == "Deal won"

    deal = api.get("/api/v1/fields/deal").get_json()
    by_name = {f["name"]: f for f in deal["fields"]}
    assert by_name["title"]["required"] is True and by_name["title"]["type"] == "string"
    assert by_name["lead_id"]["readonly"] is True
    assert by_name["source"]["choices"][0] == "CALL"
    assert by_name["stage"]["choices"][:2] == ["NEW", "PREPARATION"]
    assert by_name["amount"]["labels"] == {"ru": "Сумма", "en": "Amount"}
    assert by_name["contact_ids"]["ref"] == "contact"
    lead = api.get("/api/v1/fields/leads").get_json()  # the plural works too
    assert lead["entity"] == "lead"
    assert "CONVERTED" in {f["name"]: f for f in lead["fields"]}["status"]["choices"]
    r = api.get("/api/v1/fields/invoice_x")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
