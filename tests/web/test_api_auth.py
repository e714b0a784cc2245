"""Who may call /api/v1: token login, CLI tokens, revoked tokens, 401s, CSRF for cookies."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from crm_models.org import ApiToken
from crm_models.services.org import update_user

from ..factories import SYSTEM, make_lead
from .api_support import (  # noqa: F401  (fast_passwords: an autouse fixture)
    Api,
    api_for,
    error_of,
    fast_passwords,
    row_counts,
)


def login(client, email="m1@test.local", password="demo", **kw):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password, **kw})


def test_login_returns_a_working_token(app, org, client):
    r = login(client, "M1@Test.Local ")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["token"].startswith("mr_") and body["token_type"] == "Bearer"
    assert body["user"]["id"] == org.m1.id and body["user"]["email"] == "m1@test.local"
    assert "password" not in r.get_data(as_text=True) and "$argon2" not in r.get_data(as_text=True)
    fresh = app.test_client()  # no cookie: the token alone authenticates
    me = Api(fresh, body["token"]).get("/api/v1/users/me")
    assert me.status_code == 200 and me.get_json()["id"] == org.m1.id


def test_wrong_credentials_are_401_then_throttled_429(app, org, client, db):
    for email, password in (("m1@test.local", "wrong"), ("nobody@test.local", "demo")):
        r = login(client, email, password)
        assert r.status_code == 401 and error_of(r)["code"] == "invalid_credentials"
    for _ in range(4):
        assert login(client, password="wrong").status_code == 401
    r = login(client)  # the right password, but too many failures for this address + e-mail
    assert r.status_code == 429 and error_of(r)["code"] == "too_many_attempts"
    assert login(client, "m2@test.local").status_code == 200  # other e-mails are not blocked
    assert db.scalar(select(ApiToken.id).where(ApiToken.user_id == org.m1.id)) is None


@pytest.mark.parametrize(("body", "field"), [
    ({"email": "m1@test.local"}, "password"), ({"password": "demo"}, "email"),
    ({"email": 5, "password": "demo"}, "email"),
    ({"email": "m1@test.local", "password": ["demo"]}, "password"),
    ({"email": "m1@test.local", "password": "demo", "remember": True}, "remember"),
    ({"email": "m1@test.local", "password": "demo", "name": "x" * 101}, "name"),
])
def test_login_input_errors(org, client, body, field):
    r = client.post("/api/v1/auth/login", json=body)
    assert r.status_code == 422 and field in error_of(r)["fields"]


def test_cli_create_token(app, org, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-token", "m2@test.local", "--name", "integration"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    me = Api(app.test_client(), token).get("/api/v1/users/me")
    assert me.status_code == 200 and me.get_json()["email"] == "m2@test.local"
    missing = runner.invoke(args=["create-token", "nobody@test.local"])
    assert missing.exit_code != 0 and "No user" in missing.output


def test_revoked_unknown_and_deactivated_tokens_are_401(app, org, db):
    api = api_for(app, db, org.m1)
    assert api.get("/api/v1/leads").status_code == 200
    r = api.post("/api/v1/auth/logout")
    assert r.status_code == 204
    r = api.get("/api/v1/leads")
    assert r.status_code == 401 and error_of(r)["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")

    # revoked by flag (e.g. by an admin tool)
    other = api_for(app, db, org.m2)
    db.rollback()
    for row in db.scalars(select(ApiToken).where(ApiToken.user_id == org.m2.id)):
        row.revoked = True
    db.commit()
    assert other.get("/api/v1/leads").status_code == 401

    fresh = app.test_client()
    for header in ("Bearer mr_unknown", "Bearer ", "Bearer " + "x" * 500, "Basic Zm9vOmJhcg=="):
        r = fresh.get("/api/v1/leads", headers={"Authorization": header})
        assert r.status_code == 401, header

    head = api_for(app, db, org.head)
    update_user(db, SYSTEM, org.head.id, active=False)
    db.commit()
    assert head.get("/api/v1/users/me").status_code == 401


def test_every_api_route_needs_authentication(app, org):
    client = app.test_client()
    public = {"api.auth_login", "api.openapi_json"}
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint in public:
            continue
        path = re.sub(r"<[^>]*>", "1", rule.rule).replace("/fields/1", "/fields/deal")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            r = client.open(path, method=method, json={})
            assert r.status_code == 401, (method, path, r.status_code)
            assert error_of(r)["code"] == "unauthorized"
            checked += 1
    assert checked > 50
    assert client.get("/api/v1/openapi.json").status_code == 200


def _session_client(app, auth, email="m1@test.local"):
    assert auth.login(email).status_code == 302
    return auth.client


def test_cookie_session_writes_need_the_csrf_token(app, org, auth, db):
    client = _session_client(app, auth)
    assert client.get("/api/v1/leads").status_code == 200  # reads need no token
    lead = make_lead(db, org.m1)
    db.commit()
    before = row_counts(db)
    for method, path, body in (("POST", "/api/v1/leads", {"title": "x"}),
                               ("PATCH", f"/api/v1/leads/{lead.id}", {"title": "y"}),
                               ("DELETE", f"/api/v1/leads/{lead.id}", None),
                               ("POST", f"/api/v1/leads/{lead.id}/comments", {"text": "x"})):
        r = client.open(path, method=method, json=body)
        assert r.status_code == 400, (method, path)
        assert error_of(r)["code"] == "csrf_failed"
        r = client.open(path, method=method, json=body, headers={"X-CSRFToken": "forged"})
        assert r.status_code == 400 and error_of(r)["code"] == "csrf_failed"
    assert row_counts(db) == before

    token = auth.csrf_token()  # the login page: no dependence on other pages
    r = client.post("/api/v1/leads", json={"title": "With token"},
                    headers={"X-CSRFToken": token})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["responsible_id"] == org.m1.id
    r = client.delete(f"/api/v1/leads/{lead.id}", headers={"X-CSRFToken": token})
    assert r.status_code == 204


def test_bearer_calls_and_login_need_no_csrf(app, org, auth, db):
    client = _session_client(app, auth, "m2@test.local")
    # /auth/login works from a browser that already has a session, without a CSRF token
    r = client.post("/api/v1/auth/login", json={"email": "m1@test.local", "password": "demo"})
    assert r.status_code == 200
    token = r.get_json()["token"]
    # with a Bearer token the cookie is ignored: the token's user acts, no CSRF needed
    r = client.post("/api/v1/leads", json={"title": "Via token"},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201 and r.get_json()["responsible_id"] == org.m1.id
    # a bad token does not fall back to the cookie
    r = client.get("/api/v1/leads", headers={"Authorization": "Bearer mr_bad"})
    assert r.status_code == 401


def test_logout_of_a_cookie_session(app, org, auth):
    client = _session_client(app, auth)
    token = auth.csrf_token()  # the login page: no dependence on other pages
    assert client.post("/api/v1/auth/logout", headers={"X-CSRFToken": token}).status_code == 204
    assert client.get("/api/v1/leads").status_code == 401
