"""Administration pages: users, departments, roles with their permission matrix, grants.

Only actors with the "manage CRM settings" right get here; everyone else gets 403 (and an
anonymous visitor the login page). The services check the right again on every write.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, redirect, request, url_for

from strictnum import id_or_none

from ...auth import require_actor

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def _admins_only() -> Any:
    if g.get("user") is None:
        return redirect(url_for("login", next=request.full_path.rstrip("?")))
    if not require_actor().is_admin:
        abort(403)
    return None


@bp.get("/")
def index() -> Any:
    return redirect(url_for("admin.users"))


def int_or_raw(value: str | None) -> Any:
    """Form ids as ints; empty as None; anything else as typed, for the service to name."""
    value = (value or "").strip()
    if not value:
        return None
    number = id_or_none(value)
    return value if number is None else number


from . import departments, logins, roles, users  # noqa: E402,F401  (they add routes to bp)
