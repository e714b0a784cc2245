"""The REST transport: URLs, parameter encodings, the envelope, errors, auth and the rate limit."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app import create_app
from crm_models.db import utcnow
from integrations.models import IncomingWebhook
from integrations.webhooks import revoke_webhook
from tests.factories import SYSTEM, make_deal

from .conftest import Hook, make_hook

TIME_KEYS = {"start", "finish", "duration", "processing", "date_start", "date_finish"}


def test_method_with_and_without_json_suffix_any_case(app, org, admin_hook, rest):
    for name in ("user.current", "user.current.json", "USER.Current", "User.Current.JSON"):
        status, body = rest(admin_hook, name)
        assert status == 200, (name, body)
        assert body["result"]["ID"] == str(org.admin.id)
        assert TIME_KEYS <= set(body["time"])
        dt.datetime.fromisoformat(body["time"]["date_start"]).utcoffset()  # has an offset


def test_get_query_with_brackets(app, org, db, admin_hook, rest):
    make_deal(db, org.admin, title="Alpha", amount="10")
    make_deal(db, org.admin, title="Beta", amount="20")
    db.commit()
    status, body = rest(admin_hook, "crm.deal.list",
                        query="select[]=TITLE&filter[%3EOPPORTUNITY]=15&order[ID]=desc",
                        http="GET")
    assert status == 200, body
    assert [d["TITLE"] for d in body["result"]] == ["Beta"]
    assert set(body["result"][0]) == {"ID", "TITLE"}


def test_form_encoded_nested_multifields_and_uppercase_top_level(app, org, admin_hook, rest):
    status, body = rest(admin_hook, "crm.contact.add", form={
        "FIELDS[NAME]": "Ivan", "FIELDS[LAST_NAME]": "Petrov",
        "FIELDS[PHONE][0][VALUE]": "+7 900 111-22-33", "FIELDS[PHONE][0][VALUE_TYPE]": "MOBILE",
        "FIELDS[EMAIL][0][VALUE]": "ivan@example.com"})
    assert status == 200, body
    status, body = rest(admin_hook, "crm.contact.get", form={"ID": str(body["result"])})
    assert status == 200, body
    c = body["result"]
    assert (c["NAME"], c["LAST_NAME"]) == ("Ivan", "Petrov")
    assert c["PHONE"] == [{"ID": "1", "VALUE_TYPE": "MOBILE", "VALUE": "+7 900 111-22-33",
                           "TYPE_ID": "PHONE"}]
    assert c["EMAIL"][0]["VALUE"] == "ivan@example.com"
    assert c["EMAIL"][0]["VALUE_TYPE"] == "WORK"


def test_json_body_top_level_names_case_insensitive(app, org, admin_hook, rest):
    status, body = rest(admin_hook, "crm.deal.add", {"FIELDS": {"TITLE": "Json deal"}})
    assert status == 200 and isinstance(body["result"], int)
    status, body = rest(admin_hook, "crm.deal.get", {"Id": body["result"]})
    assert body["result"]["TITLE"] == "Json deal"


def test_pages_of_fifty_with_total_and_next(app, org, db, admin_hook, rest):
    for i in range(120):
        make_deal(db, org.admin, title=f"D{i:03}")
    db.commit()
    status, first = rest(admin_hook, "crm.deal.list", {"select": ["ID"]})
    assert (len(first["result"]), first["total"], first["next"]) == (50, 120, 50)
    _s, last = rest(admin_hook, "crm.deal.list", {"select": ["ID"], "start": 100})
    assert (len(last["result"]), last["total"]) == (20, 120)
    assert "next" not in last
    # an offset between page boundaries
    _s, mid = rest(admin_hook, "crm.deal.list", {"select": ["ID"], "start": 75})
    ids = [int(d["ID"]) for d in first["result"]]
    assert len(mid["result"]) == 45 and int(mid["result"][0]["ID"]) == ids[0] + 75
    # start=-1: no count, no next
    _s, fast = rest(admin_hook, "crm.deal.list", {"select": ["ID"], "start": -1,
                                                   "order": {"ID": "ASC"},
                                                   "filter": {">ID": ids[49]}})
    assert "total" not in fast and "next" not in fast
    assert int(fast["result"][0]["ID"]) == ids[49] + 1 and len(fast["result"]) == 50


BAD_INPUT = [
    ("no.such.method", {}, 404, "ERROR_METHOD_NOT_FOUND"),
    ("crm.deal.get", {"id": "abc"}, 400, ""),
    ("crm.deal.get", {}, 400, ""),
    ("crm.deal.get", {"id": 999999}, 400, ""),
    ("crm.deal.add", {"fields": "TITLE"}, 400, ""),
    ("crm.deal.add", {"fields": {"TITLE": {"x": 1}}}, 400, ""),
    ("crm.deal.add", {"fields": {"TITLE": "x", "OPPORTUNITY": "lots"}}, 400, ""),
    ("crm.deal.add", {"fields": {"TITLE": "x", "STAGE_ID": "NOPE"}}, 400, ""),
    ("crm.deal.add", {"fields": {"TITLE": "x", "ASSIGNED_BY_ID": [1]}}, 400, ""),
    ("crm.deal.list", {"filter": {"=%TITLE": "a%"}}, 400, ""),
    ("crm.deal.list", {"filter": {"NO_SUCH": 1}}, 400, ""),
    ("crm.deal.list", {"filter": {">OPPORTUNITY": "many"}}, 400, ""),
    ("crm.deal.list", {"filter": "x"}, 400, ""),
    ("crm.deal.list", {"order": {"TITLE": "UP"}}, 400, ""),
    ("crm.deal.list", {"start": "x"}, 400, ""),
    ("crm.deal.list", {"filter": {">DATE_CREATE": "yesterday"}}, 400, ""),
    ("crm.contact.update", {"id": 1, "fields": {"PHONE": [{"ID": "9", "VALUE": "1"}]}}, 400, ""),
    ("user.get", {"filter": {"SALARY": 1}}, 400, "INVALID_ARG_VALUE"),
    ("crm.category.list", {"entityTypeId": 99}, 400, "NOT_FOUND"),
    ("crm.activity.list", {"filter": {"OWNER_ID": 1}}, 400, ""),
    ("crm.timeline.comment.add", {"fields": {"ENTITY_TYPE": "deal", "ENTITY_ID": 1}}, 400, ""),
    ("crm.activity.add", {"fields": {"OWNER_TYPE_ID": 9, "OWNER_ID": 1}}, 400, ""),
    ("crm.lead.convert", {"id": 999}, 400, ""),
    ("crm.status.list", {"filter": {"COLOR": "red"}}, 400, ""),
]


def test_bad_input_gives_bitrix_errors(app, org, db, admin_hook, rest):
    """Wrong types, unknown ids, unsupported filters: 400 with Bitrix24's codes, never 500."""
    from tests.factories import make_contact

    make_contact(db, org.admin)
    db.commit()
    for method, params, status, code in BAD_INPUT:
        got, body = rest(admin_hook, method, params)
        assert (got, body["error"]) == (status, code), (method, params, body)
        assert body["error_description"], (method, params)


def test_errors_name_bitrix_fields(app, org, admin_hook, rest):
    status, body = rest(admin_hook, "crm.deal.add", {"fields": {"OPPORTUNITY": "-5"}})
    assert status == 400 and body["error"] == ""
    assert "TITLE" in body["error_description"] and "OPPORTUNITY" in body["error_description"]
    assert "amount:" not in body["error_description"]


def test_malformed_brackets(app, org, admin_hook, rest):
    for form, fragment in (({"fields[TITLE": "x"}, "Malformed"),
                           ({"fields]TITLE[": "x"}, "Malformed"),
                           ({"fields[TITLE]x": "x"}, "Malformed"),
                           ({"fields": "x", "fields[TITLE]": "y"}, "conflicts"),
                           ({"fields[TITLE][]": "x", "fields[TITLE]": "y"}, "conflicts")):
        status, body = rest(admin_hook, "crm.deal.add", form=form)
        assert (status, body["error"]) == (400, "INVALID_REQUEST"), form
        assert fragment in body["error_description"]


def test_malformed_json_and_non_object_body(app, org, admin_hook, client):
    r = client.post(admin_hook.path + "crm.deal.add", data="{not json",
                    content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"] == "INVALID_REQUEST"
    r = client.post(admin_hook.path + "crm.deal.add", data='"x"', content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"] == "INVALID_REQUEST"


def test_auth_failures(app, org, db, admin_hook, rest, client):
    wrong = Hook(admin_hook.user_id, "nottherightsecret")
    other_user = Hook(org.m1.id, admin_hook.secret)
    for hook in (wrong, other_user, Hook(0, "")):
        status, body = rest(hook, "user.current")
        assert (status, body["error"]) == (401, "NO_AUTH_FOUND")
    row = db.scalars(select(IncomingWebhook)).one()
    revoke_webhook(db, SYSTEM, row.id)
    db.commit()
    status, body = rest(admin_hook, "user.current")
    assert (status, body["error"]) == (401, "NO_AUTH_FOUND")
    for path in ("/rest/", "/rest/1/", "/rest/x"):
        r = client.get(path)
        assert r.status_code == 401 and r.get_json()["error"] == "NO_AUTH_FOUND"


def test_scope_is_enforced(app, org, db, rest):
    hook = make_hook(db, org.m1, scopes=["user"])
    status, body = rest(hook, "crm.deal.list")
    assert (status, body["error"]) == (403, "insufficient_scope")
    status, body = rest(hook, "department.get")
    assert (status, body["error"]) == (403, "insufficient_scope")
    assert rest(hook, "user.get")[0] == 200
    status, body = rest(hook, "batch", {"cmd": {"a": "crm.deal.list", "b": "user.current"}})
    assert status == 200
    assert body["result"]["result_error"]["a"]["error"] == "insufficient_scope"
    assert body["result"]["result"]["b"]["ID"] == str(org.m1.id)


def test_other_verbs_and_xml(app, org, admin_hook, rest):
    status, body = rest(admin_hook, "user.current", http="PUT")
    assert (status, body["error"]) == (405, "ERROR_METHOD_NOT_ALLOWED")
    status, body = rest(admin_hook, "user.current.xml")
    assert (status, body["error"]) == (400, "INVALID_REQUEST")


def test_unexpected_failure_is_bitrix_shaped(app, org, admin_hook, rest, monkeypatch):
    from web.bitrix import registry

    def boom(ctx, params):
        raise RuntimeError("bug")

    m = registry.METHODS["user.current"]
    monkeypatch.setitem(registry.METHODS, "user.current",
                        registry.Method(m.name, m.scope, boom, m.legacy))
    status, body = rest(admin_hook, "user.current")
    assert status == 500
    assert body == {"error": "INTERNAL_SERVER_ERROR",
                    "error_description": "Internal server error; the change was not saved"}


def test_rate_limit_leaky_bucket(app, org, admin_hook, rest, monkeypatch):
    monkeypatch.setitem(app.config, "BITRIX_RATE_PER_SECOND", 0.001)
    monkeypatch.setitem(app.config, "BITRIX_RATE_BURST", 3)
    assert [rest(admin_hook, "user.current")[0] for _ in range(3)] == [200] * 3
    status, body = rest(admin_hook, "user.current")
    assert (status, body["error"]) == (503, "QUERY_LIMIT_EXCEEDED")
    # a batch is one request
    assert rest(admin_hook, "batch", {"cmd": {"a": "user.current"}})[0] == 503


def test_rate_limit_drains_over_time(app, org, db, admin_hook, rest, monkeypatch):
    monkeypatch.setitem(app.config, "BITRIX_RATE_PER_SECOND", 2)
    monkeypatch.setitem(app.config, "BITRIX_RATE_BURST", 2)
    assert [rest(admin_hook, "user.current")[0] for _ in range(3)][-1] == 503
    row = db.scalars(select(IncomingWebhook)).one()
    row.bucket_at = utcnow() - dt.timedelta(seconds=1)  # one second later: 2 requests drained
    db.commit()
    assert [rest(admin_hook, "user.current")[0] for _ in range(2)] == [200, 200]


def test_rate_limit_is_shared_between_processes(app, app_config, org, admin_hook, rest,
                                                monkeypatch):
    """Two app instances (as two worker processes would be) share one bucket."""
    other = create_app({**app_config, "BITRIX_RATE_PER_SECOND": 0.001, "BITRIX_RATE_BURST": 4})
    monkeypatch.setitem(app.config, "BITRIX_RATE_PER_SECOND", 0.001)
    monkeypatch.setitem(app.config, "BITRIX_RATE_BURST", 4)
    try:
        other_client = other.test_client()
        statuses = []
        for i in range(6):
            if i % 2:
                statuses.append(other_client.post(admin_hook.path + "user.current",
                                                  json={}).status_code)
            else:
                statuses.append(rest(admin_hook, "user.current")[0])
        assert statuses == [200, 200, 200, 200, 503, 503]
    finally:
        other.extensions["db_engine"].dispose()
