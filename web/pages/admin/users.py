"""Admin: the user list and the user form (profile, out-of-office, deputy, granted roles)."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from crm_models.errors import ValidationFailed
from crm_models.org import Role, RoleGrant, User
from crm_models.services.org import create_user, update_user

from ...auth import require_actor, sign_in, throttled_password_check
from ...database import get_db
from ..format import role_name
from ..lookups import departments
from ..messages import translate_fields
from . import bp, int_or_raw
from .roles import role_ids_from_form, sync_grants

#: Offered in the time zone list; any IANA name typed in is accepted too.
COMMON_TIMEZONES = (
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
    "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
    "Asia/Magadan", "Asia/Kamchatka", "Europe/Minsk", "Asia/Almaty", "Europe/London",
    "Europe/Berlin", "America/New_York", "UTC",
)


@bp.get("/users")
def users() -> Any:
    db = get_db()
    rows = list(db.scalars(select(User).order_by(User.full_name)))
    grants: dict[int, list[str]] = {}
    for user_id, role in db.execute(select(RoleGrant.user_id, Role).join(Role)
                                    .where(RoleGrant.user_id.is_not(None))):
        grants.setdefault(user_id, []).append(role_name(role))
    return render_template("admin/users.html", users=rows, grants=grants)


def _local_input(value: dt.datetime | None, tz: str) -> str:
    """A stored UTC time as a ``datetime-local`` value in ``tz``."""
    if value is None:
        return ""
    return value.astimezone(zoneinfo.ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def _values(user: User | None) -> dict[str, Any]:
    if user is None:
        return {"full_name": "", "email": "", "active": True, "locale": "ru",
                "timezone": "Europe/Moscow", "department_id": "", "deputy_id": "",
                "out_of_office_from": "", "out_of_office_until": "", "roles": []}
    db = get_db()
    return {
        "full_name": user.full_name, "email": user.email, "active": user.active,
        "locale": user.locale, "timezone": user.timezone,
        "department_id": str(user.department_id or ""), "deputy_id": str(user.deputy_id or ""),
        "out_of_office_from": _local_input(user.out_of_office_from, user.timezone),
        "out_of_office_until": _local_input(user.out_of_office_until, user.timezone),
        "roles": [str(r) for r in db.scalars(select(RoleGrant.role_id)
                                             .where(RoleGrant.user_id == user.id))],
    }


def _render(user: User | None, values: dict[str, Any], errors: dict[str, str] | None = None,
            status: int = 200) -> Any:
    db = get_db()
    return render_template(
        "admin/user_form.html", user=user, values=values, errors=errors or {},
        departments=departments(),
        users=[u for u in db.scalars(select(User).where(User.active).order_by(User.full_name))
               if user is None or u.id != user.id],
        roles=list(db.scalars(select(Role).order_by(Role.name))),
        timezones=COMMON_TIMEZONES), status


def _form_data(creating: bool) -> dict[str, Any]:
    form = request.form
    data: dict[str, Any] = {
        "full_name": form.get("full_name", ""), "email": form.get("email", ""),
        "active": form.get("active") == "on", "locale": form.get("locale", ""),
        "timezone": form.get("timezone", "").strip(),
        "department_id": int_or_raw(form.get("department_id")),
        "deputy_id": int_or_raw(form.get("deputy_id")),
    }
    for key in ("out_of_office_from", "out_of_office_until"):
        data[key] = _with_zone(form.get(key, ""), data["timezone"])
    if creating or form.get("password"):
        data["password"] = form.get("password", "")
    return data


def _with_zone(raw: str, timezone: str) -> str | None:
    """A ``datetime-local`` value as ISO 8601 in the time zone chosen on the same form
    (the one the admin sees); left as typed when either is unusable, for the service to judge."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        local = dt.datetime.fromisoformat(raw)
        if local.tzinfo is None:
            local = local.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return raw
    return local.isoformat()


def _save(user: User | None) -> Any:
    actor = require_actor()
    db = get_db()
    data = _form_data(user is None)
    errors: dict[str, str] = {}
    try:
        wanted = role_ids_from_form(db)
    except ValidationFailed as exc:
        errors, wanted = dict(exc.fields), set()
    try:
        if user is None:
            saved = create_user(db, actor, **data)
        elif user.id == actor.user_id and "password" in data:  # one's own: needs the current one
            with throttled_password_check(user.email):
                saved = update_user(db, actor, user.id, **data,
                                    current_password=request.form.get("current_password", ""))
        else:  # someone else's new password also ends their sessions and revokes credentials
            saved = update_user(db, actor, user.id, **data)
        if errors:  # the service checked the rest; report everything at once
            raise ValidationFailed(errors)
        sync_grants(db, actor, wanted, user_id=saved.id)
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        exc.fields.update(errors)
        values = {**data, "password": "", "roles": request.form.getlist("roles"),
                  "department_id": request.form.get("department_id", ""),
                  "deputy_id": request.form.get("deputy_id", ""),
                  "out_of_office_from": request.form.get("out_of_office_from", ""),
                  "out_of_office_until": request.form.get("out_of_office_until", "")}
        user = db.get(User, user.id) if user is not None else None
        return _render(user, values, translate_fields(exc.fields), 422)
    if user is not None and saved.id == actor.user_id and "password" in data:
        sign_in(saved)  # one's own password change ends the other sessions, not this one
    flash(_("User “%(name)s” saved.", name=saved.full_name), "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/new", methods=["GET", "POST"])
def user_new() -> Any:
    if request.method == "POST":
        return _save(None)
    return _render(None, _values(None))


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
def user_edit(user_id: int) -> Any:
    user = get_db().get(User, user_id)
    if user is None:
        abort(404)
    if request.method == "POST":
        return _save(user)
    return _render(user, _values(user))
