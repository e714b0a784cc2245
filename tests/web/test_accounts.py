"""Accounts: sessions that end (logout, password change, deactivation, "log out everywhere"),
password changes that revoke credentials, the lock-out notice, failed logins for admins,
Argon2 rehash and constant-time login, and the security headers on every response."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from crm_models.org import ApiToken, LoginAttempt, User
from crm_models.permissions import actor_for, system_actor
from crm_models.services import org as org_services
from crm_models.services.org import create_token, update_user
from integrations.webhooks import create_webhook

from ..factories import PASSWORD, SYSTEM
from .api_support import Api, error_of
from .pages_support import Browser, field_error, fresh, text
from .test_editor_pages import deploy

NEW_PASSWORD = "n3w-Passw0rd"


class Sessions:
    """Several browsers, each its own test client with its own cookie jar."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def browser(self, user: User, password: str = PASSWORD) -> Browser:
        from tests.conftest import AuthActions

        client = self.app.test_client()
        browser = Browser(client, AuthActions(client))
        r = browser.auth.login(user.email, password)
        assert r.status_code == 302, text(r)[:500]
        return browser

    def with_cookie(self, value: str) -> Any:
        client = self.app.test_client()
        client.set_cookie("session", value)
        return client


@pytest.fixture()
def sessions(app: Any) -> Sessions:
    return Sessions(app)


def signed_in(client: Any) -> bool:
    r = client.get("/profile")
    assert r.status_code in (200, 302, 401), r.status_code
    return r.status_code == 200


def hook_works(client: Any, user_id: int, secret: str) -> bool:
    r = client.get(f"/rest/{user_id}/{secret}/user.current.json")
    return r.status_code == 200 and r.get_json()["result"]["ID"] == str(user_id)


def token_works(client: Any, token: str) -> bool:
    return Api(client, token).get("/api/v1/users/me").status_code == 200


# --- sessions ----------------------------------------------------------------------------------

def test_cookie_replayed_after_logout_is_refused(app, org, sessions):
    browser = sessions.browser(org.m1)
    cookie = browser.client.get_cookie("session").value
    assert signed_in(sessions.with_cookie(cookie))  # a copy works while the session lives
    assert browser.auth.logout().status_code == 302
    replay = sessions.with_cookie(cookie)
    r = replay.get("/leads")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert not signed_in(replay)


def test_cookie_replayed_after_api_logout_is_refused(app, org, sessions):
    browser = sessions.browser(org.m1)
    cookie = browser.client.get_cookie("session").value
    r = browser.client.post("/api/v1/auth/logout",
                            headers={"X-CSRFToken": browser.token()})
    assert r.status_code == 204
    assert sessions.with_cookie(cookie).get("/api/v1/users/me").status_code == 401


def test_log_out_everywhere_ends_every_session(app, org, sessions):
    first, second = sessions.browser(org.m1), sessions.browser(org.m1)
    other_user = sessions.browser(org.m2)
    r = first.post("/profile/sessions/end")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert not signed_in(first.client) and not signed_in(second.client)
    assert signed_in(other_user.client)
    assert signed_in(sessions.browser(org.m1).client)  # signing in again works


def test_deactivation_ends_sessions_for_good(app, db, org, sessions):
    browser = sessions.browser(org.m1)
    cookie = browser.client.get_cookie("session").value
    update_user(db, SYSTEM, org.m1.id, active=False)
    db.commit()
    assert not signed_in(sessions.with_cookie(cookie))
    update_user(db, SYSTEM, org.m1.id, active=True)
    db.commit()
    assert not signed_in(sessions.with_cookie(cookie))  # reactivation revives no old session
    assert signed_in(sessions.browser(org.m1).client)


# --- password change ---------------------------------------------------------------------------

def _credentials(app: Any, db: Any, user: User) -> tuple[str, str]:
    token = create_token(db, user, "script")
    _hook, secret = create_webhook(db, system_actor("tests"), user_id=user.id, name="crm")
    db.commit()
    client = app.test_client()
    assert token_works(client, token) and hook_works(client, user.id, secret)
    return token, secret


def change_password(browser: Browser, current: str = PASSWORD, new: str = NEW_PASSWORD,
                    again: str | None = None, revoke: bool = True) -> Any:
    data = {"current_password": current, "new_password": new,
            "new_password2": new if again is None else again}
    if revoke:
        data["revoke_credentials"] = "1"
    return browser.post("/profile/password", data)


def test_password_change_ends_other_sessions_and_revokes_credentials(app, db, org, sessions):
    token, secret = _credentials(app, db, org.m1)
    here, elsewhere = sessions.browser(org.m1), sessions.browser(org.m1)
    page = here.get("/profile")
    assert 'name="revoke_credentials" value="1" checked' in text(page)  # on by default
    r = change_password(here)
    assert r.status_code == 302, text(r)[:2000]
    assert signed_in(here.client)  # this browser stays signed in
    assert not signed_in(elsewhere.client)  # the other one is signed out
    client = app.test_client()
    assert not token_works(client, token)
    assert not hook_works(client, org.m1.id, secret)
    assert fresh(db).scalar(select(ApiToken.revoked).where(ApiToken.user_id == org.m1.id))
    # The webhook shows as revoked on the profile page, and a new one works.
    assert "revoked" in text(here.get("/profile/webhooks")) or "отозван" in text(
        here.get("/profile/webhooks"))
    _hook, new_secret = create_webhook(db, system_actor("tests"), user_id=org.m1.id,
                                       name="new")
    db.commit()
    assert hook_works(client, org.m1.id, new_secret)
    # The new password signs in, the old one does not.
    assert sessions.browser(org.m1, NEW_PASSWORD)
    assert here.auth.login(org.m1.email, PASSWORD).status_code == 401


def test_password_change_may_keep_tokens_and_webhooks(app, db, org, sessions):
    token, secret = _credentials(app, db, org.m1)
    here, elsewhere = sessions.browser(org.m1), sessions.browser(org.m1)
    assert change_password(here, revoke=False).status_code == 302
    assert signed_in(here.client) and not signed_in(elsewhere.client)
    client = app.test_client()
    assert token_works(client, token) and hook_works(client, org.m1.id, secret)


@pytest.mark.parametrize(("form", "field"), [
    ({"current": "wrong"}, "current_password"),
    ({"current": ""}, "current_password"),
    ({"new": "abc"}, "new_password"),
    ({"again": "something else"}, "new_password2"),
])
def test_wrong_password_change_changes_nothing(app, db, org, sessions, form, field):
    token, secret = _credentials(app, db, org.m1)
    before = fresh(db).get(User, org.m1.id).password_hash
    here, elsewhere = sessions.browser(org.m1), sessions.browser(org.m1)
    r = change_password(here, **form)
    assert r.status_code == 422
    assert field_error(text(r), field), text(r)[:3000]
    assert fresh(db).get(User, org.m1.id).password_hash == before
    assert signed_in(here.client) and signed_in(elsewhere.client)
    client = app.test_client()
    assert token_works(client, token) and hook_works(client, org.m1.id, secret)


def test_guessing_the_current_password_is_throttled(app, db, org, sessions):
    here = sessions.browser(org.m1)
    for _ in range(org_services.THROTTLE_MAX_FAILURES):
        assert change_password(here, current="guess").status_code == 422
    r = change_password(here)  # the right one, too late
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "15 минут" in text(r)
    assert org_services.check_password(fresh(db).get(User, org.m1.id), PASSWORD)
    # The API shares the throttle.
    token = create_token(db, org.m1, "script")
    db.commit()
    r = Api(app.test_client(), token).patch(f"/api/v1/users/{org.m1.id}", {
        "password": NEW_PASSWORD, "current_password": PASSWORD})
    assert r.status_code == 429 and error_of(r)["code"] == "too_many_attempts"
    assert "Retry-After" in r.headers


def test_admin_reset_revokes_everything(app, db, org, sessions):
    token, secret = _credentials(app, db, org.m1)
    victim = sessions.browser(org.m1)
    admin = sessions.browser(org.admin)
    form = admin.get(f"/admin/users/{org.m1.id}/edit")
    assert 'name="current_password"' not in text(form)
    r = admin.post(f"/admin/users/{org.m1.id}/edit", {
        "full_name": org.m1.full_name, "email": org.m1.email, "active": "on", "locale": "ru",
        "timezone": "Europe/Moscow", "password": NEW_PASSWORD})
    assert r.status_code == 302, text(r)[:2000]
    assert not signed_in(victim.client)
    client = app.test_client()
    assert not token_works(client, token) and not hook_works(client, org.m1.id, secret)
    assert signed_in(admin.client)


def test_admin_changing_own_password_on_the_admin_form_needs_the_current_one(app, db, org,
                                                                           sessions):
    admin = sessions.browser(org.admin)
    assert 'name="current_password"' in text(admin.get(f"/admin/users/{org.admin.id}/edit"))
    base = {"full_name": org.admin.full_name, "email": org.admin.email, "active": "on",
            "locale": "ru", "timezone": "Europe/Moscow"}
    r = admin.post(f"/admin/users/{org.admin.id}/edit", {**base, "password": NEW_PASSWORD})
    assert r.status_code == 422 and field_error(text(r), "current_password")


def test_api_password_change_needs_the_current_one(app, db, org, sessions):
    token = create_token(db, org.m1, "script")
    other = create_token(db, org.m1, "other")
    db.commit()
    api = Api(app.test_client(), token)
    r = api.patch(f"/api/v1/users/{org.m1.id}", {"password": NEW_PASSWORD})
    assert r.status_code == 422 and "current_password" in error_of(r)["fields"]
    r = api.patch(f"/api/v1/users/{org.m1.id}", {"password": NEW_PASSWORD,
                                                 "current_password": "wrong"})
    assert r.status_code == 422 and "current_password" in error_of(r)["fields"]
    assert token_works(app.test_client(), other)
    r = api.patch(f"/api/v1/users/{org.m1.id}", {"password": NEW_PASSWORD,
                                                 "current_password": PASSWORD,
                                                 "revoke_credentials": False})
    assert r.status_code == 200, r.get_json()
    assert token_works(app.test_client(), other)
    # A browser session changing its own password through the API stays signed in.
    browser = sessions.browser(org.m1, NEW_PASSWORD)
    elsewhere = sessions.browser(org.m1, NEW_PASSWORD)
    r = browser.client.patch(f"/api/v1/users/{org.m1.id}",
                             json={"password": PASSWORD, "current_password": NEW_PASSWORD},
                             headers={"X-CSRFToken": browser.token()})
    assert r.status_code == 200, r.get_json()
    assert signed_in(browser.client) and not signed_in(elsewhere.client)
    assert not token_works(app.test_client(), other)  # revoke_credentials defaults to true


# --- lock-out, failed logins ---------------------------------------------------------------------

@pytest.mark.parametrize(("language", "ago", "notice"), [
    ("ru", 0, "Слишком много неудачных попыток; попробуйте через 15 минут."),
    ("ru", 12 * 60 + 30, "Слишком много неудачных попыток; попробуйте через 3 минуты."),
    ("ru", 14 * 60 + 30, "Слишком много неудачных попыток; попробуйте через 1 минуту."),
    ("en", 0, "Too many failed attempts; try again in 15 minutes."),
    ("en", 14 * 60 + 30, "Too many failed attempts; try again in 1 minute."),
])
def test_lock_out_notice_names_the_minutes(app, db, org, client, auth, language, ago, notice):
    headers = {"Accept-Language": language}
    token = auth.csrf_token()
    for _ in range(5):
        r = client.post("/login", data={"email": "m1@test.local", "password": "wrong",
                                        "csrf_token": token}, headers=headers)
        assert r.status_code == 401
    for attempt in fresh(db).scalars(select(LoginAttempt)):  # as if they were made earlier
        attempt.at -= dt.timedelta(seconds=ago)
    db.commit()
    r = client.post("/login", data={"email": "m1@test.local", "password": PASSWORD,
                                    "csrf_token": token}, headers=headers)
    assert r.status_code == 429
    assert notice in text(r), text(r)[:3000]
    assert 15 * 60 - ago - 60 <= int(r.headers["Retry-After"]) <= 15 * 60 - ago + 1


def test_account_lock_spans_addresses(app, db, org):
    for n in range(org_services.ACCOUNT_MAX_FAILURES):
        assert org_services.authenticate(db, "m1@test.local", "wrong",
                                         key=f"10.0.{n}.1|m1@test.local") is None
    db.commit()
    with pytest.raises(org_services.LoginLocked) as info:
        org_services.authenticate(db, "m1@test.local", PASSWORD, key="10.9.9.9|m1@test.local")
    assert 0 < info.value.retry_after <= 15 * 60 + 1
    # Unknown e-mails lock the same way: the lock does not tell which accounts exist.
    for n in range(org_services.ACCOUNT_MAX_FAILURES):
        org_services.authenticate(db, "ghost@test.local", "x", key=f"10.1.{n}.1|ghost")
    with pytest.raises(org_services.LoginLocked):
        org_services.authenticate(db, "ghost@test.local", "x", key="10.9.9.9|ghost")


def test_failed_logins_page_is_for_admins_only(app, db, org, client, auth, sessions):
    assert auth.login("m1@test.local", "wrong").status_code == 401
    assert auth.login("nobody@test.local", "wrong").status_code == 401
    r = client.get("/admin/logins")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    manager = sessions.browser(org.m2)
    assert manager.get("/admin/logins").status_code == 403
    admin = sessions.browser(org.admin)
    page = admin.get("/admin/logins")
    assert page.status_code == 200
    body = text(page)
    assert "m1@test.local" in body and "nobody@test.local" in body and "127.0.0.1" in body
    with pytest.raises(org_services.PermissionDenied):
        org_services.recent_failed_logins(db, actor_for(db, org.m2))


# --- Argon2 ----------------------------------------------------------------------------------------

class CountingHasher(PasswordHasher):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


@pytest.fixture()
def counting(monkeypatch) -> CountingHasher:
    hasher = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(org_services, "_hasher", hasher)
    return hasher


def test_every_login_runs_argon2(app, db, org, client, auth, counting):
    update_user(db, SYSTEM, org.m2.id, active=False)
    db.commit()
    cases = [("m1@test.local", "wrong", 401), ("nobody@test.local", "wrong", 401),
             ("m2@test.local", PASSWORD, 401), ("", "x", 401), ("m1@test.local", PASSWORD, 302)]
    for email, password, status in cases:
        counting.verified.clear()
        token = auth.csrf_token()
        r = client.post("/login", data={"email": email, "password": password,
                                        "csrf_token": token})
        assert r.status_code == status, email
        assert len(counting.verified) == 1, email
        assert counting.verified[0].startswith("$argon2id$v=19$m=1024,t=1,p=1$"), email
    # Through the API as well.
    counting.verified.clear()
    assert client.post("/api/v1/auth/login", json={"email": "nobody@test.local",
                                                   "password": "x"}).status_code == 401
    assert len(counting.verified) == 1


def test_login_rehashes_when_the_parameters_changed(app, db, org, sessions):
    old = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    user = db.get(User, org.m1.id)
    user.password_hash = old.hash(PASSWORD)
    db.commit()
    elsewhere = sessions.browser(org.m1)  # signing in rehashes …
    stored = fresh(db).get(User, org.m1.id).password_hash
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert org_services.check_password(db.get(User, org.m1.id), PASSWORD)
    assert signed_in(elsewhere.client)  # … without ending any session
    sessions.browser(org.m1)
    assert fresh(db).get(User, org.m1.id).password_hash == stored  # current ones stay


def test_wrong_password_does_not_rehash(app, db, org, auth):
    old = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    user = db.get(User, org.m1.id)
    user.password_hash = before = old.hash(PASSWORD)
    db.commit()
    assert auth.login(org.m1.email, "wrong").status_code == 401
    assert fresh(db).get(User, org.m1.id).password_hash == before


# --- security headers --------------------------------------------------------------------------

def assert_security_headers(r: Any) -> None:
    csp = r.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, csp
    assert "'unsafe-eval'" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
    assert r.headers.get("X-Frame-Options") == "DENY"
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert r.headers.get("Referrer-Policy") == "strict-origin-when-cross-origin"


def test_security_headers_everywhere(app, db, org, client, sessions):
    assert_security_headers(client.get("/login"))
    assert_security_headers(client.get("/api/v1/leads"))  # a 401 answer
    assert_security_headers(client.get("/api/v1/openapi.json"))
    with client.get("/static/favicon.svg") as static:
        assert_security_headers(static)
    assert_security_headers(client.get("/no-such-page"))
    deploy(app, db, org)
    designer = sessions.browser(org.admin)
    assert_security_headers(designer.get("/inbox"))
    assert_security_headers(designer.get("/processes/"))
    r = designer.get("/processes/big_deals/edit")
    assert r.status_code == 200
    assert_security_headers(r)
    token = create_token(db, org.m1)
    db.commit()
    assert_security_headers(Api(client, token).get("/api/v1/users/me"))
