"""Admin: recent failed logins (who tried which e-mail from where, and which are locked now)."""
from __future__ import annotations

from typing import Any

from flask import render_template
from sqlalchemy import func, select

from crm_models.org import User
from crm_models.services.org import (
    ACCOUNT_MAX_FAILURES,
    FAILED_LOGIN_RETENTION,
    login_lock,
    recent_failed_logins,
)

from ...auth import require_actor
from ...database import get_db
from . import bp


@bp.get("/logins")
def failed_logins() -> Any:
    db = get_db()
    rows = recent_failed_logins(db, require_actor())
    emails = sorted({r.email for r in rows if r.email})
    known = set(db.scalars(select(func.lower(User.email)).where(
        func.lower(User.email).in_(emails)))) if emails else set()
    locked = {e: wait for e in emails if (wait := login_lock(db, key="", email=e)) is not None}
    return render_template("admin/logins.html", rows=rows, known=known, locked=locked,
                           retention_days=FAILED_LOGIN_RETENTION.days,
                           account_limit=ACCOUNT_MAX_FAILURES)
