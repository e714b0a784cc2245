"""Helpers for the REST API tests: a Bearer-token client and row counts for no-write checks."""
from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.activity import Activity, AuditEvent, Comment, OutboxEvent
from crm_models.entities import Company, Contact, Deal, Lead, deal_contact
from crm_models.org import User
from crm_models.services import org as org_services
from crm_models.services.org import create_token

PLURALS = {"lead": "leads", "deal": "deals", "contact": "contacts", "company": "companies"}


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap Argon2 parameters for test users: the default ones cost about a second per
    user on a busy machine, and every test builds the org chart. Verification reads the
    parameters from the hash, so logins still go through real Argon2."""
    monkeypatch.setattr(org_services, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


class Api:
    """A test client that sends ``Authorization: Bearer <token>`` and JSON bodies."""

    def __init__(self, client: Any, token: str | None, db: Session | None = None) -> None:
        self.client = client
        self.token = token
        self.db = db

    def call(self, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        if self.db is not None:
            # End the test session's transaction first: a read snapshot left open across the
            # request's write would make the test's next write fail on SQLite ("database is
            # locked"). Tests commit their set-up, so nothing pending is lost.
            self.db.commit()
        headers = dict(kw.pop("headers", {}))
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        if json is not None:
            kw["json"] = json
        return self.client.open(path, method=method, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.call("PATCH", path, json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.call("PUT", path, json, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)


def token_for(db: Session, user: User) -> str:
    # Commit first: a read transaction left open by the test would hold an old SQLite
    # snapshot, and writing from it after the API committed fails as "database is locked".
    db.commit()
    token = create_token(db, user, "tests")
    db.commit()
    return token


def api_for(app: Any, db: Session, user: User) -> Api:
    """A fresh client (no cookies) acting as ``user`` through an API token."""
    return Api(app.test_client(), token_for(db, user), db)


def row_counts(db: Session) -> dict[str, int]:
    """How many rows each CRM table holds, as committed (the session's transaction ends
    before and after counting)."""
    db.rollback()
    out = {}
    for name, table in (("lead", Lead), ("deal", Deal), ("contact", Contact),
                        ("company", Company), ("outbox", OutboxEvent), ("audit", AuditEvent),
                        ("comment", Comment), ("activity", Activity), ("user", User)):
        out[name] = db.scalar(select(func.count()).select_from(table)) or 0
    out["deal_contact"] = db.scalar(select(func.count()).select_from(deal_contact)) or 0
    db.rollback()  # leave no read snapshot open for the test's next write (SQLite)
    return out


def outbox_types(db: Session, entity: str | None = None) -> list[str]:
    db.rollback()
    stmt = select(OutboxEvent.event_type).order_by(OutboxEvent.id)
    if entity:
        stmt = stmt.where(OutboxEvent.entity_type == entity)
    out = list(db.scalars(stmt))
    db.rollback()
    return out


def error_of(response: Any) -> dict[str, Any]:
    """The ``error`` object of an API error response (asserting its shape on the way)."""
    body = response.get_json()
    assert body is not None, response.get_data(as_text=True)[:300]
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert 400 <= response.status_code < 500, (response.status_code, body)
    return body["error"]
