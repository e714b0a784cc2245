"""``crm.*`` methods: Bitrix24 field names mapped onto the same services, filters, ordering,
select, multi-fields, reference lists, timeline and activities."""
from __future__ import annotations

from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.entities import Deal, Pipeline, Stage
from tests.factories import make_company, make_contact, make_deal


def wholesale(db):
    db.add(Pipeline(id=1, name="Wholesale", sort=10, stages=[
        Stage(code="C1:NEW", name="New", sort=10),
        Stage(code="C1:WON", name="Won", sort=20, semantics="won")]))
    db.commit()


def test_deal_round_trip_with_bitrix_names(app, org, db, admin_hook, rest):
    wholesale(db)
    company = make_company(db, org.admin, title="Acme")
    c1, c2 = make_contact(db, org.admin), make_contact(db, org.admin)
    db.commit()
    status, body = rest(admin_hook, "crm.deal.add", {"fields": {
        "TITLE": "Big one", "OPPORTUNITY": 15000, "CURRENCY_ID": "usd", "CATEGORY_ID": "1",
        "STAGE_ID": "C1:NEW", "COMPANY_ID": str(company.id), "CONTACT_IDS": [c1.id, str(c2.id)],
        "ASSIGNED_BY_ID": org.m1.id, "OPENED": "N", "PROBABILITY": "40", "SOURCE_ID": "WEB",
        "COMMENTS": "note", "CLOSEDATE": "2030-05-01T00:00:00+03:00", "UF_CRM_1": "ignored",
        "TYPE_ID": "SALE"}})
    assert status == 200, body
    deal_id = body["result"]
    _s, got = rest(admin_hook, "crm.deal.get", {"id": deal_id})
    d = got["result"]
    assert d["ID"] == str(deal_id)
    assert (d["TITLE"], d["OPPORTUNITY"], d["CURRENCY_ID"]) == ("Big one", "15000.00", "USD")
    assert (d["CATEGORY_ID"], d["STAGE_ID"], d["STAGE_SEMANTIC_ID"], d["CLOSED"]) == (
        "1", "C1:NEW", "P", "N")
    assert (d["COMPANY_ID"], d["CONTACT_ID"]) == (str(company.id), str(c1.id))
    assert d["CONTACT_IDS"] == [str(c1.id), str(c2.id)]
    assert (d["ASSIGNED_BY_ID"], d["CREATED_BY_ID"], d["OPENED"]) == (
        str(org.m1.id), str(org.admin.id), "N")
    assert (d["PROBABILITY"], d["SOURCE_ID"], d["COMMENTS"]) == ("40", "WEB", "note")
    assert d["CLOSEDATE"].startswith("2030-05-01T00:00:00")
    assert d["DATE_CREATE"][-6] in "+-"  # ISO 8601 with an offset
    # the same service wrote the same outbox event, acting as the webhook's user
    db.rollback()
    ev = db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "deal.created",
                                              OutboxEvent.entity_id == deal_id)).one()
    assert ev.actor_user_id == org.admin.id

    status, body = rest(admin_hook, "crm.deal.update", {"id": deal_id, "fields": {
        "STAGE_ID": "C1:WON", "OPPORTUNITY": "99.90", "CONTACT_ID": 0, "COMPANY_ID": 0}})
    assert (status, body["result"]) == (200, True)
    _s, got = rest(admin_hook, "crm.deal.get", {"id": deal_id})
    d = got["result"]
    assert (d["STAGE_ID"], d["STAGE_SEMANTIC_ID"], d["CLOSED"], d["OPPORTUNITY"]) == (
        "C1:WON", "S", "Y", "99.90")
    assert d["CONTACT_IDS"] == [] and d["COMPANY_ID"] is None
    db.rollback()  # a fresh snapshot: the API wrote through its own connection
    assert db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "deal.stage_changed",
                                                OutboxEvent.entity_id == deal_id)).one()
    assert rest(admin_hook, "crm.deal.delete", {"id": deal_id})[1]["result"] is True
    status, body = rest(admin_hook, "crm.deal.get", {"id": deal_id})
    assert (status, body["error"]) == (400, "")


def test_stage_of_another_category_infers_it(app, org, db, admin_hook, rest):
    wholesale(db)
    _s, body = rest(admin_hook, "crm.deal.add", {"fields": {"TITLE": "x", "STAGE_ID": "C1:NEW"}})
    assert db.get(Deal, body["result"]).pipeline_id == 1
    status, body = rest(admin_hook, "crm.deal.add", {"fields": {
        "TITLE": "x", "STAGE_ID": "C1:NEW", "CATEGORY_ID": 0}})
    assert status == 400 and "STAGE_ID" in body["error_description"]


def test_multifield_update_rules(app, org, admin_hook, rest):
    _s, body = rest(admin_hook, "crm.contact.add", {"fields": {
        "NAME": "Anna", "PHONE": [{"VALUE": "+7 111 111-11-11", "VALUE_TYPE": "WORK"},
                                  {"VALUE": "+7 222 222-22-22", "VALUE_TYPE": "MOBILE"}]}})
    cid = body["result"]
    # ID 1 replaced, ID 2 deleted (empty VALUE), one without ID added
    status, body = rest(admin_hook, "crm.contact.update", {"id": cid, "fields": {"PHONE": [
        {"ID": "1", "VALUE": "+7 333 333-33-33", "VALUE_TYPE": "HOME"},
        {"ID": "2", "VALUE": ""}, {"VALUE": "+7 444 444-44-44"}]}})
    assert status == 200, body
    phones = rest(admin_hook, "crm.contact.get", {"id": cid})[1]["result"]["PHONE"]
    assert [(p["ID"], p["VALUE"], p["VALUE_TYPE"]) for p in phones] == [
        ("1", "+7 333 333-33-33", "HOME"), ("2", "+7 444 444-44-44", "WORK")]
    status, body = rest(admin_hook, "crm.contact.update", {"id": cid, "fields": {
        "EMAIL": [{"VALUE": "not-an-email"}]}})
    assert status == 400 and "EMAIL" in body["error_description"]


def test_lead_company_and_conversion(app, org, admin_hook, rest):
    _s, body = rest(admin_hook, "crm.lead.add", {"fields": {
        "TITLE": "Site form", "NAME": "Oleg", "LAST_NAME": "Sidorov", "COMPANY_TITLE": "Romashka",
        "STATUS_ID": "IN_PROCESS", "SOURCE_ID": "WEBFORM", "OPPORTUNITY": "500",
        "EMAIL": [{"VALUE": "oleg@example.com", "VALUE_TYPE": "WORK"}]}})
    lead_id = body["result"]
    lead = rest(admin_hook, "crm.lead.get", {"id": lead_id})[1]["result"]
    assert (lead["STATUS_ID"], lead["STATUS_SEMANTIC_ID"], lead["HAS_EMAIL"], lead["HAS_PHONE"]) \
        == ("IN_PROCESS", "P", "Y", "N")
    status, body = rest(admin_hook, "crm.lead.convert", {"id": lead_id,
                                                         "fields": {"TITLE": "From lead"}})
    assert status == 200, body
    links = body["result"]
    deal = rest(admin_hook, "crm.deal.get", {"id": links["DEAL_ID"]})[1]["result"]
    assert (deal["TITLE"], deal["LEAD_ID"], deal["OPPORTUNITY"]) == ("From lead", str(lead_id),
                                                                     "500.00")
    company = rest(admin_hook, "crm.company.get", {"id": links["COMPANY_ID"]})[1]["result"]
    assert company["TITLE"] == "Romashka"
    contact = rest(admin_hook, "crm.contact.get", {"id": links["CONTACT_ID"]})[1]["result"]
    assert contact["COMPANY_ID"] == links["COMPANY_ID"]
    lead = rest(admin_hook, "crm.lead.get", {"id": lead_id})[1]["result"]
    assert (lead["STATUS_ID"], lead["STATUS_SEMANTIC_ID"]) == ("CONVERTED", "S")
    status, body = rest(admin_hook, "crm.lead.convert", {"id": lead_id})
    assert status == 400 and body["error"] == ""


def test_filter_prefixes(app, org, db, admin_hook, rest):
    a = make_deal(db, org.admin, title="Alpha", amount="100", opened=False)
    b = make_deal(db, org.m1, title="Beta", amount="200", stage="WON")
    c = make_deal(db, org.m2, title="Gamma alpha", amount="300")
    db.commit()

    def titles(flt, **extra):
        status, body = rest(admin_hook, "crm.deal.list", {"filter": flt, "select": ["TITLE"],
                                                          **extra})
        assert status == 200, (flt, body)
        return sorted(d["TITLE"] for d in body["result"])

    assert titles({"OPPORTUNITY": "200"}) == ["Beta"]
    assert titles({"=ID": b.id}) == ["Beta"]
    assert titles({"!ID": b.id}) == ["Alpha", "Gamma alpha"]
    assert titles({"!=STAGE_ID": "NEW"}) == ["Beta"]
    assert titles({">OPPORTUNITY": 100}) == ["Beta", "Gamma alpha"]
    assert titles({">=OPPORTUNITY": 200, "<OPPORTUNITY": 300}) == ["Beta"]
    assert titles({"<=OPPORTUNITY": 200}) == ["Alpha", "Beta"]
    assert titles({"@ASSIGNED_BY_ID": [org.admin.id, org.m2.id]}) == ["Alpha", "Gamma alpha"]
    assert titles({"ID": [a.id, c.id]}) == ["Alpha", "Gamma alpha"]
    assert titles({"!@ID": [a.id, c.id]}) == ["Beta"]
    assert titles({"!ASSIGNED_BY_ID": [org.admin.id, org.m1.id]}) == ["Gamma alpha"]
    assert titles({"%TITLE": "ALPHA"}) == ["Alpha", "Gamma alpha"]
    assert titles({"OPENED": "N"}) == ["Alpha"]
    status, body = rest(admin_hook, "crm.deal.list", {"filter": {"STAGE_SEMANTIC_ID": "S"}})
    assert status == 400 and "STAGE_SEMANTIC_ID" in body["error_description"]
    assert titles({">DATE_CREATE": "2000-01-01"}) == ["Alpha", "Beta", "Gamma alpha"]
    assert titles({"<DATE_CREATE": "01.01.2000"}) == []
    status, body = rest(admin_hook, "crm.deal.list", {"order": {"OPPORTUNITY": "DESC"},
                                                      "select": ["OPPORTUNITY"]})
    assert [d["OPPORTUNITY"] for d in body["result"]] == ["300.00", "200.00", "100.00"]


def test_select(app, org, db, admin_hook, rest):
    make_contact(db, org.admin, first_name="Ann",
                 phones=[{"value": "+7 999 000-00-01", "value_type": "WORK"}])
    db.commit()
    rows = rest(admin_hook, "crm.contact.list", {})[1]["result"]
    assert "PHONE" not in rows[0] and "NAME" in rows[0]  # multi-fields only when asked
    rows = rest(admin_hook, "crm.contact.list", {"select": ["*", "PHONE"]})[1]["result"]
    assert rows[0]["PHONE"][0]["VALUE"] == "+7 999 000-00-01" and "NAME" in rows[0]
    rows = rest(admin_hook, "crm.contact.list", {"select": ["NAME", "UF_*", "NOPE"]})[1]["result"]
    assert set(rows[0]) == {"ID", "NAME"}
    # a telephony-style lookup by phone
    rows = rest(admin_hook, "crm.contact.list", {"filter": {"PHONE": "79990000001"}})[1]["result"]
    assert [r["NAME"] for r in rows] == ["Ann"]


def test_fields_descriptors(app, org, admin_hook, rest):
    fields = rest(admin_hook, "crm.deal.fields")[1]["result"]
    assert fields["STAGE_ID"]["type"] == "crm_status"
    assert fields["STAGE_ID"]["statusType"] == "DEAL_STAGE"
    assert fields["TITLE"]["isRequired"] is True
    assert fields["ID"]["isReadOnly"] is True and fields["DATE_CREATE"]["type"] == "datetime"
    assert fields["CONTACT_IDS"]["isMultiple"] is True
    for entity in ("lead", "contact", "company"):
        fields = rest(admin_hook, f"crm.{entity}.fields")[1]["result"]
        assert {"type", "isRequired", "isReadOnly", "isMultiple", "title"} <= set(fields["ID"])
        assert fields["ASSIGNED_BY_ID"]["type"] == "user"
    assert rest(admin_hook, "crm.contact.fields")[1]["result"]["PHONE"]["type"] == \
        "crm_multifield"


def test_status_and_category_lists(app, org, db, admin_hook, rest):
    wholesale(db)
    rows = rest(admin_hook, "crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE_1"}})[1]
    assert [r["STATUS_ID"] for r in rows["result"]] == ["C1:NEW", "C1:WON"]
    assert rows["result"][1]["SEMANTICS"] == "S" and rows["total"] == 2
    stages = rest(admin_hook, "crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}})[1]
    assert stages["result"][0]["STATUS_ID"] == "NEW"
    sources = rest(admin_hook, "crm.status.list", {"filter": {"ENTITY_ID": "SOURCE"}})[1]
    assert "WEB" in [r["STATUS_ID"] for r in sources["result"]]
    statuses = rest(admin_hook, "crm.status.list", {"filter": {"=ENTITY_ID": "STATUS"}})[1]
    assert "CONVERTED" in [r["STATUS_ID"] for r in statuses["result"]]
    cats = rest(admin_hook, "crm.category.list", {"entityTypeId": 2})[1]
    assert [(c["id"], c["isDefault"]) for c in cats["result"]["categories"]] == [(0, "Y"),
                                                                                  (1, "N")]


def test_timeline_comment_and_activities(app, org, db, admin_hook, rest):
    deal = make_deal(db, org.admin)
    db.commit()
    status, body = rest(admin_hook, "crm.timeline.comment.add", {"fields": {
        "ENTITY_ID": deal.id, "ENTITY_TYPE": "deal", "COMMENT": "Called the client"}})
    assert status == 200 and isinstance(body["result"], int)
    db.rollback()
    assert db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "comment.added")).one()
    db.rollback()
    status, body = rest(admin_hook, "crm.activity.add", {"fields": {
        "OWNER_TYPE_ID": 2, "OWNER_ID": deal.id, "TYPE_ID": 2, "SUBJECT": "Call back",
        "DEADLINE": "2030-01-02 10:00:00", "RESPONSIBLE_ID": org.m1.id}})
    assert status == 200, body
    status, body = rest(admin_hook, "crm.activity.list", {"filter": {
        "OWNER_TYPE_ID": 2, "OWNER_ID": deal.id}})
    assert body["total"] == 1
    act = body["result"][0]
    assert (act["TYPE_ID"], act["SUBJECT"], act["COMPLETED"], act["RESPONSIBLE_ID"]) == (
        "2", "Call back", "N", str(org.m1.id))
    assert act["DEADLINE"] == "2030-01-02T10:00:00+03:00"  # the user's zone, Europe/Moscow
    status, body = rest(admin_hook, "crm.activity.add", {"fields": {
        "OWNER_TYPE_ID": 2, "OWNER_ID": deal.id, "SUBJECT": ""}})
    assert status == 400 and "SUBJECT" in body["error_description"]


def test_users_and_departments(app, org, admin_hook, rest):
    users = rest(admin_hook, "user.get", {"FILTER": {"UF_DEPARTMENT": org.sales_id}})[1]
    assert sorted(u["EMAIL"] for u in users["result"]) == [
        "head@test.local", "m1@test.local", "m2@test.local"]
    one = rest(admin_hook, "user.get", {"ID": org.m1.id})[1]["result"]
    assert [(u["NAME"], u["LAST_NAME"], u["ACTIVE"]) for u in one] == [("Manager", "One", True)]
    found = rest(admin_hook, "user.get", {"filter": {"%EMAIL": "OUT@"}})[1]["result"]
    assert [u["ID"] for u in found] == [str(org.outsider.id)]
    deps = rest(admin_hook, "department.get", {"ID": org.corporate_id})[1]["result"]
    assert deps == [{"ID": str(org.corporate_id), "NAME": "Corporate", "SORT": 500,
                     "PARENT": str(org.sales_id), "UF_HEAD": str(org.corporate.id)}]
    children = rest(admin_hook, "department.get", {"PARENT": org.sales_id})[1]
    assert children["total"] == 1
