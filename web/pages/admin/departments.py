"""Admin: the department tree, the department form (parent, head, roles granted), deletion."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from crm_models.errors import Conflict, ValidationFailed
from crm_models.org import Department, Role, RoleGrant, User
from crm_models.services.org import delete_department, save_department

from ...auth import require_actor
from ...database import get_db
from ..format import role_name
from ..messages import translate_fields
from . import bp, int_or_raw
from .roles import role_ids_from_form, sync_grants


@dataclass
class Node:
    department: Department
    members: int
    roles: list[str]
    children: list[Node] = field(default_factory=list)


def tree() -> list[Node]:
    """The departments as a forest, children sorted by name."""
    db = get_db()
    deps = list(db.scalars(select(Department).order_by(Department.name)))
    members = dict(db.execute(select(User.department_id, func.count())
                              .group_by(User.department_id)).all())
    roles: dict[int, list[str]] = {}
    for dep_id, role in db.execute(select(RoleGrant.department_id, Role).join(Role)
                                   .where(RoleGrant.department_id.is_not(None))):
        roles.setdefault(dep_id, []).append(role_name(role))
    nodes = {d.id: Node(d, members.get(d.id, 0), roles.get(d.id, [])) for d in deps}
    roots = []
    for d in deps:
        parent = nodes.get(d.parent_id) if d.parent_id is not None else None
        (parent.children if parent is not None else roots).append(nodes[d.id])
    return roots


@bp.get("/departments")
def departments() -> Any:
    return render_template("admin/departments.html", tree=tree())


def _render(dep: Department | None, values: dict[str, Any],
            errors: dict[str, str] | None = None, status: int = 200) -> Any:
    db = get_db()
    return render_template(
        "admin/department_form.html", department=dep, values=values, errors=errors or {},
        departments=[d for d in db.scalars(select(Department).order_by(Department.name))
                     if dep is None or d.id != dep.id],
        users=list(db.scalars(select(User).where(User.active).order_by(User.full_name))),
        roles=list(db.scalars(select(Role).order_by(Role.name)))), status


def _values(dep: Department | None) -> dict[str, Any]:
    if dep is None:
        return {"name": "", "parent_id": request.args.get("parent_id", ""), "head_id": "",
                "roles": []}
    return {"name": dep.name, "parent_id": str(dep.parent_id or ""),
            "head_id": str(dep.head_id or ""),
            "roles": [str(r) for r in get_db().scalars(
                select(RoleGrant.role_id).where(RoleGrant.department_id == dep.id))]}


def _save(dep: Department | None) -> Any:
    actor = require_actor()
    db = get_db()
    form = request.form
    data: dict[str, Any] = {"name": form.get("name", "")}
    errors: dict[str, str] = {}
    for key in ("parent_id", "head_id"):
        value = int_or_raw(form.get(key))
        if value is not None and not isinstance(value, int):
            errors[key], value = "must be a whole number", None
        data[key] = value
    try:
        wanted = role_ids_from_form(db)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        wanted = set()
    try:
        saved = save_department(db, actor, dep.id if dep else None, **data)
        if errors:  # the service checked the rest; report everything at once
            raise ValidationFailed(errors)
        sync_grants(db, actor, wanted, department_id=saved.id)
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        values = {**form.to_dict(), "roles": form.getlist("roles")}
        return _render(db.get(Department, dep.id) if dep else None, values,
                       translate_fields({**exc.fields, **errors}), 422)
    flash(_("Department “%(name)s” saved.", name=saved.name), "success")
    return redirect(url_for("admin.departments"))


@bp.route("/departments/new", methods=["GET", "POST"])
def department_new() -> Any:
    if request.method == "POST":
        return _save(None)
    return _render(None, _values(None))


def _department(dep_id: int) -> Department:
    dep = get_db().get(Department, dep_id)
    if dep is None:
        abort(404)
    return dep


@bp.route("/departments/<int:dep_id>/edit", methods=["GET", "POST"])
def department_edit(dep_id: int) -> Any:
    dep = _department(dep_id)
    if request.method == "POST":
        return _save(dep)
    return _render(dep, _values(dep))


@bp.post("/departments/<int:dep_id>/delete")
def department_delete(dep_id: int) -> Any:
    dep = _department(dep_id)
    name = dep.name
    db = get_db()
    try:
        delete_department(db, require_actor(), dep_id)
        db.commit()
    except Conflict:
        db.rollback()
        flash(_("Move the department's members and sub-departments out first."), "error")
        return redirect(url_for("admin.department_edit", dep_id=dep_id), code=303)
    flash(_("Department “%(name)s” deleted.", name=name), "success")
    return redirect(url_for("admin.departments"))
