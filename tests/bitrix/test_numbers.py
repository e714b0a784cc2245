"""Numbers in REST parameters are ASCII digits (issue 18): ``"²".isdigit()`` is true and
``int("²")`` fails, ``int("١")`` is 1 — each gave a 500 or a wrong record. Every case answers
Bitrix24's 400 shape naming the parameter, on every entity; and the ``order``/``sort`` shapes
Bitrix24 accepts on ``user.get`` and ``department.get`` are accepted here too."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm_models.entities import Deal
from tests.factories import make_deal

ENTITIES = ("lead", "deal", "contact", "company")


@pytest.fixture(autouse=True)
def no_rate_limit(app, monkeypatch):
    monkeypatch.setitem(app.config, "BITRIX_RATE_BURST", 10**6)


def bitrix_400(status, body, *fragments):
    assert status == 400, body
    assert set(body) == {"error", "error_description"}, body
    for fragment in fragments:
        assert fragment in body["error_description"], body


@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("raw", ["²", "١", "1²", "٣", "½", "-1", "0", "2147483648", "1e3", " "])
def test_ids_are_ascii_whole_numbers_in_range(app, org, db, admin_hook, rest, entity, raw):
    make_deal(db, org.admin)  # record 1 exists: "١" must not find it
    db.commit()
    for method in ("get", "update", "delete"):
        status, body = rest(admin_hook, f"crm.{entity}.{method}", {"id": raw, "fields": {}})
        bitrix_400(status, body, "ID is not defined or invalid")
        assert body["error"] == ""
    status, body = rest(admin_hook, f"crm.{entity}.get", form={"ID": raw})
    bitrix_400(status, body, "ID is not defined or invalid")


@pytest.mark.parametrize("entity", ENTITIES)
def test_start_and_form_keys(app, org, admin_hook, rest, entity):
    for raw in ("²", "١", "-2", "1.5", "1000000001"):
        status, body = rest(admin_hook, f"crm.{entity}.list", {"start": raw})
        bitrix_400(status, body, "'start'")
        status, body = rest(admin_hook, f"crm.{entity}.list", form={"start": raw})
        bitrix_400(status, body, "'start'")
    # A key of Unicode digits is a name, not an array index: refused as an unknown field.
    status, body = rest(admin_hook, f"crm.{entity}.list", form={"filter[²]": "1"})
    bitrix_400(status, body, "²")
    status, body = rest(admin_hook, f"crm.{entity}.list", form={"filter[١][]": "1"})
    bitrix_400(status, body, "١")
    status, body = rest(admin_hook, f"crm.{entity}.list",
                        form={"order[²]": "ASC", "select[١]": "ID"})
    bitrix_400(status, body, "order[²]")
    # fields[١]=1 is an unknown field (ignored, as Bitrix24 does); the required one is named.
    status, body = rest(admin_hook, f"crm.{entity}.add", form={"fields[١]": "1"})
    if entity != "lead":  # a lead needs nothing: it is created
        bitrix_400(status, body)
    status, body = rest(admin_hook, f"crm.{entity}.add", form={"fields[][x]": "1"})
    bitrix_400(status, body, "'fields' must be array")


@pytest.mark.parametrize("entity", ENTITIES)
def test_numeric_filters_and_fields(app, org, db, admin_hook, rest, entity):
    for flt in ({"ID": "²"}, {">ID": "١"}, {"@ID": ["1", "١"]}, {"ASSIGNED_BY_ID": "²"},
                {"ID": "99999999999"}, {"ID": {"²": 1}}):
        status, body = rest(admin_hook, f"crm.{entity}.list", {"filter": flt})
        bitrix_400(status, body, "ID")
    status, body = rest(admin_hook, f"crm.{entity}.add",
                        {"fields": {"TITLE": "x", "NAME": "x", "LAST_NAME": "x",
                                    "ASSIGNED_BY_ID": "١"}})
    bitrix_400(status, body, "ASSIGNED_BY_ID")


def test_money_and_references_take_ascii_digits_only(app, org, db, admin_hook, rest):
    before = db.scalar(select(func.count()).select_from(Deal))
    for fields, name in (({"OPPORTUNITY": "١٥٠٠"}, "OPPORTUNITY"),
                         ({"OPPORTUNITY": "1e3"}, "OPPORTUNITY"),
                         ({"OPPORTUNITY": "²"}, "OPPORTUNITY"),
                         ({"COMPANY_ID": "٣"}, "COMPANY_ID"),
                         ({"PROBABILITY": "٥٠"}, "PROBABILITY"),
                         ({"CONTACT_IDS": ["²"]}, "CONTACT_IDS")):
        status, body = rest(admin_hook, "crm.deal.add", {"fields": {"TITLE": "x", **fields}})
        bitrix_400(status, body, name)
    assert db.scalar(select(func.count()).select_from(Deal)) == before
    status, body = rest(admin_hook, "crm.deal.add", {"fields": {"TITLE": "x",
                                                                "OPPORTUNITY": "1 500,50"}})
    assert status == 200, body


def test_other_methods(app, org, db, admin_hook, rest):
    deal = make_deal(db, org.admin)
    db.commit()
    cases = [
        ("crm.category.list", {"entityTypeId": "²"}, "entityTypeId"),
        ("crm.category.list", {"entityTypeId": "٢"}, "entityTypeId"),
        ("crm.timeline.comment.add", {"fields": {"ENTITY_TYPE": "deal", "ENTITY_ID": "١",
                                                 "COMMENT": "x"}}, "ENTITY_ID"),
        ("crm.timeline.comment.add", {"fields": {"ENTITY_TYPE": "²", "ENTITY_ID": deal.id,
                                                 "COMMENT": "x"}}, "ENTITY_TYPE"),
        ("crm.activity.add", {"fields": {"OWNER_TYPE_ID": "٢", "OWNER_ID": deal.id}},
         "OWNER_TYPE_ID"),
        ("crm.activity.add", {"fields": {"OWNER_TYPE_ID": 2, "OWNER_ID": deal.id,
                                         "SUBJECT": "x", "RESPONSIBLE_ID": "²"}},
         "RESPONSIBLE_ID"),
        ("user.get", {"start": "²"}, "'start'"),
        ("user.get", {"filter": {">ID": "١"}}, "number"),
        ("user.get", {"sort": "ID", "order": "²"}, "order"),
        ("department.get", {"START": "١"}, "'start'"),
        ("bizproc.task.complete", {"TASK_ID": "²"}, "TASK_ID"),
        ("bizproc.task.list", {"FILTER": {"USER_ID": "١"}}, "USER_ID"),
        ("bizproc.workflow.start", {"TEMPLATE_ID": "٣",
                                    "DOCUMENT_ID": ["crm", "CCrmDocumentDeal", "DEAL_1"]},
         "TEMPLATE_ID"),
        ("bizproc.workflow.start", {"TEMPLATE_ID": 1,
                                    "DOCUMENT_ID": ["crm", "CCrmDocumentDeal", "DEAL_١"]},
         "Unsupported document"),
    ]
    for method, params, name in cases:
        status, body = rest(admin_hook, method, params)
        bitrix_400(status, body, name)


def test_batch_references_and_commands(app, org, db, admin_hook, rest):
    make_deal(db, org.admin, title="First")
    db.commit()
    # (the test client sorts JSON keys: the labels keep the commands in order)
    status, body = rest(admin_hook, "batch", {"halt": 0, "cmd": {
        "c1_list": "crm.deal.list?select[]=ID",
        "c2_bad": "crm.deal.get?id=$result[c1_list][١][ID]",
        "c3_sup": "crm.deal.get?id=%C2%B2",
        "c4_key": "crm.deal.list?filter[%C2%B2]=1",
        "c5_good": "crm.deal.get?id=$result[c1_list][0][ID]"}})
    assert status == 200, body
    errors = body["result"]["result_error"]
    assert set(errors) == {"c2_bad", "c3_sup", "c4_key"}, body
    assert "does not point at an earlier result" in errors["c2_bad"]["error_description"]
    assert errors["c3_sup"]["error_description"] == "ID is not defined or invalid."
    assert body["result"]["result"]["c5_good"]["TITLE"] == "First"


def test_webhook_path_user_id_is_ascii(app, org, admin_hook, client):
    for uid in ("²", "١", "0", "99999999999"):
        r = client.post(f"/rest/{uid}/{admin_hook.secret}/user.current", json={})
        assert r.status_code == 401 and r.get_json()["error"] == "NO_AUTH_FOUND", uid
    uid = "".join(chr(0x0660 + int(d)) for d in str(admin_hook.user_id))  # Arabic-Indic
    r = client.post(f"/rest/{uid}/{admin_hook.secret}/user.current", json={})
    assert r.status_code == 401


@pytest.mark.parametrize("method", ["user.get", "department.get"])
def test_order_shapes_bitrix24_accepts(app, org, admin_hook, rest, method):
    """``sort=ID&order=DESC`` and the map ``order: {"ID": "ASC"}`` that fast_bitrix24 adds to
    every list call (lower-case and multi-key maps too)."""
    def ids(params, form=None):
        status, body = rest(admin_hook, method, params, form=form)
        assert status == 200, (params, body)
        return [int(r["ID"]) for r in body["result"]]

    ascending = ids({})
    assert len(ascending) > 1 and ascending == sorted(ascending)
    assert ids({"sort": "ID", "order": "DESC"}) == ascending[::-1]
    assert ids({"order": {"ID": "ASC"}}) == ascending
    assert ids({"order": {"id": "desc"}}) == ascending[::-1]
    assert ids({"ORDER": {"ID": "DESC"}, "SORT": "NAME"}) == ascending[::-1]
    assert ids({"sort": {"ID": "DESC"}}) == ascending[::-1]
    # a form keeps the map's order (the test client sorts JSON keys)
    assert ids(None, form={"order[NAME]": "ASC", "order[ID]": "DESC"}) == [
        int(r["ID"]) for r in sorted(rest(admin_hook, method, {})[1]["result"],
                                     key=lambda r: (r["NAME"], -int(r["ID"])))]
    for bad in ({"order": {"ID": "UP"}}, {"order": {"NOPE": "ASC"}}, {"order": "SIDEWAYS"},
                {"order": {"ID": ["ASC"]}}, {"order": {str(i): "ASC" for i in range(11)}}):
        status, body = rest(admin_hook, method, bad)
        bitrix_400(status, body)
        assert body["error"] == "INVALID_ARG_VALUE"


def test_department_sort_is_an_order_or_a_filter_on_sort(app, org, admin_hook, rest):
    everyone = rest(admin_hook, "department.get", {})[1]["total"]
    assert rest(admin_hook, "department.get", {"SORT": 500})[1]["total"] == everyone
    assert rest(admin_hook, "department.get", {"sort": "500"})[1]["total"] == everyone
    assert rest(admin_hook, "department.get", {"SORT": 1})[1]["total"] == 0
    assert rest(admin_hook, "department.get", {"sort": "NAME"})[1]["total"] == everyone
