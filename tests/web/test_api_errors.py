"""Bad input through /api/v1: always a 4xx JSON error naming the field, never a partial write."""
from __future__ import annotations

import json

import pytest

from crm_models.entities import Deal, Lead

from ..factories import make_company, make_deal, make_lead
from .api_support import (  # noqa: F401  (fast_passwords: an autouse fixture)
    api_for,
    error_of,
    fast_passwords,
    row_counts,
)


@pytest.fixture()
def api(app, db, org):
    return api_for(app, db, org.m1)


BAD_CREATES = [
    ("leads", {}, "title"),
    ("leads", {"title": "   "}, "title"),
    ("leads", {"title": "x" * 100_000}, "title"),
    ("leads", {"title": 5}, "title"),
    ("leads", {"title": "x", "amount": True}, "amount"),
    ("leads", {"title": "x", "amount": "abc"}, "amount"),
    ("leads", {"title": "x", "amount": -1}, "amount"),
    ("leads", {"title": "x", "amount": "1.234"}, "amount"),
    ("leads", {"title": "x", "amount": 1e20}, "amount"),
    ("leads", {"title": "x", "amount": [1]}, "amount"),
    ("leads", {"title": "x", "currency": "RUBLE"}, "currency"),
    ("leads", {"title": "x", "source": "TV"}, "source"),
    ("leads", {"title": "x", "status": "CONVERTED", "deal_id": 1}, "deal_id"),
    ("leads", {"title": "x", "responsible_id": "x"}, "responsible_id"),
    ("leads", {"title": "x", "responsible_id": 999999}, "responsible_id"),
    ("leads", {"title": "x", "responsible_id": True}, "responsible_id"),
    ("leads", {"title": "x", "responsible_id": 2**70}, "responsible_id"),
    ("leads", {"title": "x", "responsible_id": "\u0661"}, "responsible_id"),
    ("leads", {"title": "x", "responsible_id": "\u00b2"}, "responsible_id"),
    ("leads", {"title": "x", "amount": "\u0661\u0665"}, "amount"),
    ("leads", {"title": "x", "amount": "\u00b2"}, "amount"),
    ("leads", {"title": "x", "opened": "maybe"}, "opened"),
    ("leads", {"title": "x", "phones": [{"value": "call me"}]}, "phones"),
    ("leads", {"title": "x", "phones": [{"value": "+7 1", "value_type": "PAGER"}]}, "phones"),
    ("leads", {"title": "x", "phones": {"value": "+71234"}}, "phones"),
    ("leads", {"title": "x", "emails": ["not-an-address"]}, "emails"),
    ("leads", {"title": "x", "emails": [{"value": "a\u0000@b.cd"}]}, "emails[0].value"),
    ("leads", {"title": "x", "foo": 1}, "foo"),
    ("leads", {"title": "x", "actor": 1}, "actor"),
    ("leads", {"title": "x", "session": 1}, "session"),
    ("leads", {"title": "x", "id": 7}, "id"),
    ("leads", {"title": "x", "created_at": "2020-01-01"}, "created_at"),
    ("leads", {"title": "x", "search_text": "y"}, "search_text"),
    ("leads", {"title": "x\u0000y"}, "title"),
    ("deals", {"title": "x", "company_id": 999999}, "company_id"),
    ("deals", {"title": "x", "company_id": "abc"}, "company_id"),
    ("deals", {"title": "x", "company_id": 2**40}, "company_id"),
    ("deals", {"title": "x", "probability": 2**40}, "probability"),
    ("deals", {"title": "x", "pipeline_id": 2**31}, "pipeline_id"),
    ("deals", {"title": "x", "contact_ids": [999999]}, "contact_ids"),
    ("deals", {"title": "x", "contact_ids": "1,2"}, "contact_ids"),
    ("deals", {"title": "x", "pipeline_id": 5}, "pipeline_id"),
    ("deals", {"title": "x", "stage": "NOPE"}, "stage"),
    ("deals", {"title": "x", "probability": 101}, "probability"),
    ("deals", {"title": "x", "probability": 1.5}, "probability"),
    ("deals", {"title": "x", "close_date": "31.12.2031"}, "close_date"),
    ("deals", {"title": "x", "lead_id": 1}, "lead_id"),
    ("contacts", {"position": "CEO"}, "last_name"),
    ("contacts", {"last_name": "X", "company_id": 999999}, "company_id"),
    ("companies", {"title": "x", "address": "y" * 501}, "address"),
]


@pytest.mark.parametrize(("plural", "body", "field"), BAD_CREATES,
                         ids=[f"{p}-{f}-{i}" for i, (p, _b, f) in enumerate(BAD_CREATES)])
def test_bad_create_names_the_field_and_writes_nothing(api, db, plural, body, field):
    before = row_counts(db)
    r = api.post(f"/api/v1/{plural}", json=body)
    assert r.status_code == 422, r.get_json()
    err = error_of(r)
    assert err["code"] == "validation_failed"
    assert field in err["fields"], err
    assert row_counts(db) == before


def test_every_bad_field_is_named_at_once(api, db):
    r = api.post("/api/v1/deals", json={"amount": "abc", "currency": "x", "probability": -1,
                                        "bogus": 1})
    assert set(error_of(r)["fields"]) >= {"title", "amount", "currency", "probability",
                                          "bogus"}


def test_bad_update_leaves_the_record_untouched(api, db, org):
    deal = make_deal(db, org.m1, title="Keep", amount="10.00")
    db.commit()
    before = row_counts(db)
    for body, field in (({"title": "New", "amount": True}, "amount"),
                        ({"title": "New", "company_id": 999999}, "company_id"),
                        ({"title": "New", "stage": "NOPE"}, "stage"),
                        ({"title": "New", "responsible_id": "x"}, "responsible_id"),
                        ({"title": "", "amount": "5"}, "title"),
                        ({"title": "New", "id": 5}, "id"),
                        ({"title": "New", "nope": 5}, "nope")):
        r = api.patch(f"/api/v1/deals/{deal.id}", json=body)
        assert r.status_code == 422 and field in error_of(r)["fields"], (body, r.get_json())
    assert row_counts(db) == before
    db.expire_all()
    fresh = db.get(Deal, deal.id)
    assert (fresh.title, fresh.amount) == ("Keep", deal.amount)


@pytest.mark.parametrize(("data", "content_type", "status", "code"), [
    (b'{"title": "x"', "application/json", 400, "invalid_json"),
    (b"{'title': 'x'}", "application/json", 400, "invalid_json"),
    (b'{"title": NaN}', "application/json", 400, "invalid_json"),
    (b"\xff\xfe\x00garbage", "application/json", 400, "invalid_json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "invalid_json"),
    (b'[{"title": "x"}]', "application/json", 400, "invalid_body"),
    (b'"x"', "application/json", 400, "invalid_body"),
    (b"null", "application/json", 400, "invalid_body"),
    (b"42", "application/json", 400, "invalid_body"),
    (b"", "application/json", 400, "invalid_body"),
    (b'{"title": "x"}', "text/plain", 415, "unsupported_media_type"),
    (b"title=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (b'{"title": "\\ud800"}', "application/json", 422, "validation_failed"),
])
def test_malformed_bodies(api, db, data, content_type, status, code):
    before = row_counts(db)
    r = api.post("/api/v1/leads", data=data, headers={"Content-Type": content_type})
    assert r.status_code == status, r.get_data(as_text=True)[:300]
    assert error_of(r)["code"] == code
    assert row_counts(db) == before


def test_json_with_charset_is_accepted(api):
    r = api.post("/api/v1/leads", data=json.dumps({"title": "ок"}).encode(),
                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201


def test_huge_body_is_refused_with_413(api, db, app):
    before = row_counts(db)
    big = b'{"title": "' + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10) + b'"}'
    r = api.post("/api/v1/leads", data=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert error_of(r)["code"] == "request_entity_too_large"
    assert row_counts(db) == before


@pytest.mark.parametrize("path", [
    "/api/v1/leads/abc", "/api/v1/leads/-1", "/api/v1/leads/0", "/api/v1/leads/1.5",
    "/api/v1/leads/99999999999999999999999", "/api/v1/leads/999999",
    "/api/v1/leads/2147483648", "/api/v1/deals/2199023255552/comments",
    "/api/v1/deals/abc/stage", "/api/v1/leads/x/convert", "/api/v1/nope",
    "/api/v1/companies/%00",
    # Unicode digits are not ids ("²".isdigit() is true; int("١") is 1)
    "/api/v1/leads/%C2%B2", "/api/v1/leads/%D9%A1", "/api/v1/deals/%D9%A1/stage",
    "/api/v1/leads/0001",
])
def test_bad_or_unknown_ids_are_404_json(api, path):
    for method in ("GET", "PATCH", "DELETE", "POST"):
        r = api.call(method, path, json={"title": "x"})
        assert r.status_code in (404, 405), (method, path, r.status_code)
        assert error_of(r)["code"] in ("not_found", "method_not_allowed")
    assert api.get(path).status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/leads/2147483648", "/api/v1/leads/999999999999999",
                                  "/api/v1/departments/2147483648", "/api/v1/roles/%D9%A1"])
def test_ids_out_of_range_are_404_for_every_method(api, path):
    """Not 405: a number the route pattern took but its converter refused made werkzeug
    report the other methods of the rule as the allowed ones."""
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        r = api.call(method, path, json={"name": "x"})
        assert r.status_code == 404, (method, path, r.status_code)


def test_wrong_method_is_405_json(api):
    r = api.delete("/api/v1/leads")
    assert r.status_code == 405 and error_of(r)["code"] == "method_not_allowed"


@pytest.mark.parametrize(("query", "field"), [
    ("foo=1", "foo"),
    ("phones=1", "phones"),
    ("comments=x", "comments"),
    ("amount__gt=abc", "amount__gt"),
    ("amount__between=1", "amount__between"),
    ("opened=maybe", "opened"),
    ("id=abc", "id"),
    ("responsible_id=x", "responsible_id"),
    ("created_at__gt=yesterday", "created_at__gt"),
    ("status__in=NEW,NOPE", "status__in"),
    ("opened__gt=true", "opened__gt"), ("amount__lt=", "amount__lt"),
    ("id=2199023255552", "id"), ("company_id=2199023255552", "company_id"),
    ("responsible_id__in=1,2147483648", "responsible_id__in"),
    ("id__contains=1", "id__contains"),
    ("page=abc", "page"), ("page=0", "page"), ("page=-1", "page"),
    ("page=99999999999999999999", "page"), ("per_page=501", "per_page"),
    ("per_page=0", "per_page"), ("per_page=ten", "per_page"),
    ("page=1&page=2", "page"), ("title=a&title=b", "title"),
    ("sort=password_hash", "sort"), ("sort=-nonexistent", "sort"), ("sort=phones", "sort"),
    ("q=" + "x" * 201, "q"), ("q=a%00b", "q"), ("title__contains=a%00", "title__contains"),
    ("page=%C2%B2", "page"), ("page=%D9%A1", "page"), ("per_page=%D9%A1%D9%A0", "per_page"),
    ("id=%C2%B2", "id"), ("id=%D9%A1", "id"), ("id__in=1,%D9%A1", "id__in"),
    ("responsible_id=%C2%B2", "responsible_id"), ("company_id=%D9%A1", "company_id"),
    ("amount__gt=%D9%A1", "amount__gt"), ("amount__gt=1e3", "amount__gt"),
])
def test_bad_list_params_name_the_param(api, db, org, query, field):
    make_lead(db, org.m1)
    db.commit()
    r = api.get("/api/v1/leads?" + query)
    assert r.status_code == 422, (query, r.get_json())
    assert field in error_of(r)["fields"], (query, r.get_json())


def test_nested_objects_and_references_of_other_types(api, db, org):
    company = make_company(db, org.m1)
    lead = make_lead(db, org.m1)
    db.commit()
    before = row_counts(db)
    r = api.post("/api/v1/contacts", json={"last_name": "X", "company_id": {"id": company.id}})
    assert r.status_code == 422 and "company_id" in error_of(r)["fields"]
    r = api.patch(f"/api/v1/leads/{lead.id}", json={"title": {"ru": "x"}})
    assert r.status_code == 422 and "title" in error_of(r)["fields"]
    assert row_counts(db) == before
    db.expire_all()
    assert db.get(Lead, lead.id).title == lead.title
