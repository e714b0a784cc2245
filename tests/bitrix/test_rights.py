"""A webhook acts with its owner's CRM rights: a manager with "own" rights cannot read other
managers' deals through crm.deal.list, crm.deal.get or batch, nor change them."""
from __future__ import annotations

from tests.factories import make_deal


def test_own_rights_manager(app, org, db, m1_hook, rest):
    mine = make_deal(db, org.m1, title="Mine")
    theirs = make_deal(db, org.m2, title="Theirs", opened=True)
    hidden = make_deal(db, org.outsider, title="Hidden", opened=False)
    db.commit()

    status, body = rest(m1_hook, "crm.deal.list", {"select": ["TITLE"]})
    assert status == 200 and [d["TITLE"] for d in body["result"]] == ["Mine"]
    assert body["total"] == 1
    status, body = rest(m1_hook, "crm.deal.list", {"filter": {"ID": theirs.id}})
    assert body["result"] == [] and body["total"] == 0

    for other in (theirs, hidden):
        status, body = rest(m1_hook, "crm.deal.get", {"id": other.id})
        assert (status, body["error"]) == (400, ""), body
        assert "Theirs" not in str(body) and "Hidden" not in str(body)
        status, body = rest(m1_hook, "crm.deal.update", {"id": other.id,
                                                         "fields": {"TITLE": "Hijacked"}})
        assert (status, body["error"]) == (400, "")
        status, body = rest(m1_hook, "crm.deal.delete", {"id": other.id})
        assert (status, body["error"]) == (400, "")
    assert rest(m1_hook, "crm.deal.get", {"id": mine.id})[1]["result"]["TITLE"] == "Mine"

    status, body = rest(m1_hook, "batch", {"cmd": {
        "list": "crm.deal.list?select[]=TITLE", "get": f"crm.deal.get?id={theirs.id}",
        "hidden": f"crm.deal.get?id={hidden.id}", "own": f"crm.deal.get?id={mine.id}"}})
    r = body["result"]
    assert [d["TITLE"] for d in r["result"]["list"]] == ["Mine"]
    assert set(r["result_error"]) == {"get", "hidden"}
    assert r["result"]["own"]["TITLE"] == "Mine"
    db.expire_all()
    assert db.get(type(theirs), theirs.id).title == "Theirs"


def test_manager_cannot_hand_a_deal_to_someone_else(app, org, m1_hook, rest):
    status, body = rest(m1_hook, "crm.deal.add", {"fields": {
        "TITLE": "For m2", "ASSIGNED_BY_ID": org.m2.id}})
    assert (status, body["error"]) == (400, "")
    assert "Access denied" in body["error_description"]


def test_non_crm_access_denied_is_403(app, org, db, rest):
    """Outside the legacy crm.* methods, a refused right is 403 ACCESS_DENIED."""
    from crm_models.errors import PermissionDenied
    from web.bitrix import registry

    def refuse(ctx, params):
        raise PermissionDenied("no")

    from .conftest import make_hook

    hook = make_hook(db, org.m1)
    registry.register(registry.Method("test.refuse", None, refuse))
    try:
        status, body = rest(hook, "test.refuse")
        assert (status, body["error"]) == (403, "ACCESS_DENIED")
    finally:
        del registry.METHODS["test.refuse"]


def test_links_to_records_the_owner_cannot_read_are_refused(app, org, db, m1_hook, rest):
    """crm.deal.add with the COMPANY_ID (or CONTACT_IDS) of a record the webhook's owner may
    not read fails naming the field, as for an id that does not exist; nothing is written."""
    from sqlalchemy import select

    from crm_models.entities import Deal
    from tests.factories import make_company, make_contact

    theirs = make_company(db, org.m2, title="Theirs")
    their_contact = make_contact(db, org.m2)
    mine = make_company(db, org.m1, title="Mine")
    db.commit()
    status, body = rest(m1_hook, "crm.deal.add", {"fields": {"TITLE": "Forged",
                                                             "COMPANY_ID": theirs.id}})
    assert status == 400 and "COMPANY_ID" in body["error_description"], body
    assert "Theirs" not in str(body)
    status, unknown = rest(m1_hook, "crm.deal.add", {"fields": {"TITLE": "Forged",
                                                                "COMPANY_ID": 999999}})
    assert (status, unknown["error"]) == (400, body["error"])
    status, body = rest(m1_hook, "crm.deal.add", {"fields": {
        "TITLE": "Forged", "CONTACT_IDS": [their_contact.id]}})
    assert status == 400 and "CONTACT_IDS" in body["error_description"], body
    status, body = rest(m1_hook, "crm.contact.add", {"fields": {"LAST_NAME": "Forged",
                                                                "COMPANY_ID": theirs.id}})
    assert status == 400 and "COMPANY_ID" in body["error_description"], body
    db.rollback()
    assert db.scalars(select(Deal).where(Deal.title == "Forged")).all() == []
    status, body = rest(m1_hook, "crm.deal.add", {"fields": {"TITLE": "Fine",
                                                             "COMPANY_ID": mine.id}})
    db.rollback()  # a fresh snapshot: the call committed through its own connection
    assert status == 200 and db.get(Deal, body["result"]).company_id == mine.id
