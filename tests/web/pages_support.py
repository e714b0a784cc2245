"""Helpers for the page tests: sign in as a user, post forms with the page's CSRF token,
read the database afresh, and count rows to prove that a refused form wrote nothing."""
from __future__ import annotations

import re
from html import unescape
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.activity import Activity, AuditEvent, Comment, OutboxEvent
from crm_models.entities import Company, Contact, Deal, Lead
from crm_models.org import Department, Role, RoleGrant, RolePermission, User
from crm_models.services.org import update_user
from tests.factories import SYSTEM

TABLES = (Lead, Deal, Contact, Company, Activity, Comment, AuditEvent, OutboxEvent, User,
          Department, Role, RoleGrant, RolePermission)
NBSP = "\xa0"


class Browser:
    """A signed-in test client that posts forms the way a browser does (with CSRF)."""

    def __init__(self, client: Any, auth: Any) -> None:
        self.client = client
        self.auth = auth

    def login(self, user: User) -> Browser:
        r = self.auth.login(user.email)
        assert r.status_code == 302, r.get_data(as_text=True)[:500]
        return self

    def token(self) -> str:
        return self.auth.csrf_token("/")

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             **kw: Any) -> Any:
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.token()
        return self.client.post(path, data=data, **kw)


def text(response: Any) -> str:
    """The response body as text with entities decoded (so « » and quotes compare plainly)."""
    return unescape(response.get_data(as_text=True))


def fresh(db: Session) -> Session:
    """End the test session's transaction so the next reads see what requests committed."""
    db.rollback()
    db.expire_all()
    return db


def counts(db: Session) -> dict[str, int]:
    fresh(db)
    return {m.__tablename__: db.scalar(select(func.count()).select_from(m)) or 0 for m in TABLES}


def set_locale(db: Session, user: User, locale: str) -> None:
    update_user(db, SYSTEM, user.id, locale=locale)
    db.commit()


def field_error(html: str, name: str) -> str | None:
    """The error shown next to field ``name`` (``<p class="field-error" id="err-name">``)."""
    m = re.search(rf'id="err-{re.escape(name)}">([^<]*)<', html)
    return unescape(m.group(1)) if m else None


def input_value(html: str, name: str) -> str | None:
    m = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*value="([^"]*)"', html)
    return unescape(m.group(1)) if m else None
