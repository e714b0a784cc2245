"""Admin: roles, the permission matrix as an editable grid, and role grants.

The grid posts one select per cell named ``level-<entity>-<action>`` and a checkbox per
right; ``save_role`` validates every cell, so a forged value shows as an error on its cell.
"""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_models.errors import CrmError, ValidationFailed
from crm_models.org import ACTIONS, ENTITIES, FLAGS, Department, PermLevel, Role, RoleGrant, User
from crm_models.permissions import Actor
from crm_models.services.org import grant_role, revoke_grant, save_role
from strictnum import id_or_none, int_or_none

from ...auth import require_actor
from ...database import get_db
from ..messages import translate_fields
from . import bp, int_or_raw


def role_ids_from_form(db: Session) -> set[int]:
    """The role ids ticked in a ``roles`` checkbox list; unknown ones are a field error."""
    raw = request.form.getlist("roles")
    ids = {i for i in map(id_or_none, raw) if i is not None}
    known = set(db.scalars(select(Role.id).where(Role.id.in_(ids)))) if ids else set()
    if len(known) != len(raw):
        raise ValidationFailed({"roles": "no role with id " + ", ".join(
            v for v in raw if id_or_none(v) not in known)[:40]})
    return known


def sync_grants(db: Session, actor: Actor, wanted: set[int], *, user_id: int | None = None,
                department_id: int | None = None) -> None:
    """Make the roles granted directly to this user (or department) exactly ``wanted``."""
    column = RoleGrant.user_id if user_id is not None else RoleGrant.department_id
    current = {g.role_id: g for g in db.scalars(
        select(RoleGrant).where(column == (user_id if user_id is not None else department_id)))}
    for role_id in sorted(wanted - set(current)):
        grant_role(db, actor, role_id, user_id=user_id, department_id=department_id)
    for role_id in sorted(set(current) - wanted):
        revoke_grant(db, actor, current[role_id].id)


@bp.get("/roles")
def roles() -> Any:
    db = get_db()
    rows = list(db.scalars(select(Role).order_by(Role.name)))
    return render_template("admin/roles.html", roles=rows)


def _matrix(role: Role | None) -> dict[str, Any]:
    values: dict[str, Any] = {"name": role.name if role else ""}
    for e in ENTITIES:
        for a in ACTIONS:
            values[f"level-{e}-{a}"] = str(int(role.level(e, a)) if role else 0)
    for f in FLAGS:
        values[f] = bool(getattr(role, f)) if role else False
    return values


def _render(role: Role | None, values: dict[str, Any], errors: dict[str, str] | None = None,
            status: int = 200, grant_errors: dict[str, str] | None = None) -> Any:
    db = get_db()
    grants = []
    if role is not None:
        grants = list(db.scalars(select(RoleGrant).where(RoleGrant.role_id == role.id)
                                 .order_by(RoleGrant.id)))
    return render_template(
        "admin/role_form.html", role=role, values=values, errors=errors or {},
        grant_errors=grant_errors or {}, entities=ENTITIES, actions=ACTIONS, flags=FLAGS,
        levels=list(PermLevel), grants=grants,
        users={u.id: u for u in db.scalars(select(User).order_by(User.full_name))},
        departments={d.id: d for d in db.scalars(select(Department).order_by(Department.name))},
    ), status


def _save(role: Role | None) -> Any:
    actor = require_actor()
    db = get_db()
    form = request.form
    levels: dict[tuple[str, str], Any] = {}
    for e in ENTITIES:
        for a in ACTIONS:
            raw = form.get(f"level-{e}-{a}", "0").strip()
            level = int_or_none(raw, minimum=0, maximum=99)
            levels[(e, a)] = raw if level is None else level
    flags = {f: form.get(f) == "on" for f in FLAGS}
    try:
        saved = save_role(db, actor, role.id if role else None, name=form.get("name", ""),
                          levels=levels, flags=flags)
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        values = {**form.to_dict(), **{f: form.get(f) == "on" for f in FLAGS}}
        errors = {k.replace(".", "-"): v for k, v in translate_fields(exc.fields).items()}
        return _render(db.get(Role, role.id) if role else None, values, errors, 422)
    flash(_("Role “%(name)s” saved.", name=saved.name), "success")
    return redirect(url_for("admin.role_edit", role_id=saved.id))


@bp.route("/roles/new", methods=["GET", "POST"])
def role_new() -> Any:
    if request.method == "POST":
        return _save(None)
    return _render(None, _matrix(None))


def _role(role_id: int) -> Role:
    role = get_db().get(Role, role_id)
    if role is None:
        abort(404)
    return role


@bp.route("/roles/<int:role_id>", methods=["GET", "POST"])
def role_edit(role_id: int) -> Any:
    role = _role(role_id)
    if request.method == "POST":
        return _save(role)
    return _render(role, _matrix(role))


@bp.post("/roles/<int:role_id>/grants")
def role_grant(role_id: int) -> Any:
    """Grant the role to the chosen user or department (exactly one)."""
    role = _role(role_id)
    actor = require_actor()
    db = get_db()
    target: dict[str, Any] = {}
    try:
        for key in ("user_id", "department_id"):
            value = int_or_raw(request.form.get(key))
            if value is not None and not isinstance(value, int):
                raise ValidationFailed({key: "must be a whole number"})
            target[key] = value
        grant_role(db, actor, role.id, **target)
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        return _render(_role(role_id), _matrix(_role(role_id)), status=422,
                       grant_errors=translate_fields(exc.fields))
    flash(_("Role granted."), "success")
    return redirect(url_for("admin.role_edit", role_id=role.id) + "#grants")


@bp.post("/grants/<int:grant_id>/revoke")
def grant_revoke(grant_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    grant = db.get(RoleGrant, grant_id)
    if grant is None:
        abort(404)
    role_id = grant.role_id
    try:
        revoke_grant(db, actor, grant_id)
        db.commit()
    except CrmError:
        db.rollback()
        raise
    flash(_("Grant revoked."), "success")
    return redirect(url_for("admin.role_edit", role_id=role_id) + "#grants")
