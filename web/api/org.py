"""The organisation over REST: users, departments, roles with their matrix, and role grants.

Every signed-in user may read; writes go through ``crm_models.services.org``, which lets only
admins (the ``manage_settings`` right) change anything but a user's own profile. No response
ever carries a password hash: users are serialized from an explicit list of fields.
"""
from __future__ import annotations

from typing import Any

from flask import g
from sqlalchemy import select

from crm_models.errors import NotFound, ValidationFailed
from crm_models.org import ACTIONS, ENTITIES, FLAGS, Department, Role, RoleGrant, User
from crm_models.permissions import roles_of
from crm_models.services.org import (
    create_user,
    delete_department,
    grant_role,
    revoke_grant,
    save_department,
    save_role,
    update_user,
)

from ..auth import sign_in, throttled_password_check
from .common import (
    api_route,
    check_id,
    commit,
    db_actor,
    id_param,
    json_body,
    list_of,
    only_keys,
    page_json,
    paging,
    query_args,
    ref,
    single,
)

USER_FIELDS = ("email", "full_name", "password", "active", "locale", "timezone",
               "department_id", "out_of_office_from", "out_of_office_until", "deputy_id")
DEPARTMENT_FIELDS = ("name", "parent_id", "head_id")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def user_dict(user: User) -> dict[str, Any]:
    """A user's public fields (never the password hash)."""
    return {"id": user.id, "email": user.email, "full_name": user.full_name,
            "active": user.active, "locale": user.locale, "timezone": user.timezone,
            "department_id": user.department_id, "deputy_id": user.deputy_id,
            "out_of_office_from": _iso(user.out_of_office_from),
            "out_of_office_until": _iso(user.out_of_office_until),
            "created_at": _iso(user.created_at)}


def role_brief(role: Role) -> dict[str, Any]:
    return {"id": role.id, "code": role.code, "name": role.name}


def role_dict(role: Role) -> dict[str, Any]:
    """A role with its whole matrix: ``permissions[entity][action]`` is a level 0–5."""
    return {**role_brief(role),
            "flags": {f: bool(getattr(role, f)) for f in FLAGS},
            "permissions": {e: {a: int(role.level(e, a)) for a in ACTIONS} for e in ENTITIES}}


def department_dict(dep: Department) -> dict[str, Any]:
    return {"id": dep.id, "name": dep.name, "parent_id": dep.parent_id, "head_id": dep.head_id}


def grant_dict(grant: RoleGrant) -> dict[str, Any]:
    return {"id": grant.id, "role_id": grant.role_id, "user_id": grant.user_id,
            "department_id": grant.department_id}


def _get(db: Any, model: Any, record_id: int, what: str) -> Any:
    row = db.get(model, record_id)
    if row is None:
        raise NotFound(f"No {what} with id {record_id}")
    return row


def _role_ids(body: dict[str, Any]) -> list[int] | None:
    if "role_ids" not in body:
        return None
    value = body.pop("role_ids")
    if not isinstance(value, list) or len(value) > 100:
        raise ValidationFailed({"role_ids": "must be a list of role ids"})
    return [check_id(v, "role_ids") for v in value]  # type: ignore[misc]


def _set_roles(db: Any, actor: Any, user: User, role_ids: list[int]) -> None:
    """Make the user's direct grants exactly ``role_ids`` (department grants stay)."""
    for rid in role_ids:
        if db.get(Role, rid) is None:
            raise ValidationFailed({"role_ids": f"no role with id {rid}"})
    direct = list(db.scalars(select(RoleGrant).where(RoleGrant.user_id == user.id)))
    for grant in direct:
        if grant.role_id not in role_ids:
            revoke_grant(db, actor, grant.id)
    for rid in dict.fromkeys(role_ids):
        grant_role(db, actor, rid, user_id=user.id)


def _user_detail(db: Any, user: User) -> dict[str, Any]:
    return {**user_dict(user), "roles": [role_brief(r) for r in roles_of(db, user)]}


# --- users -----------------------------------------------------------------------------------

@api_route("/users", tag="users", summary="Users (every signed-in user may read them)",
           response=ref("UserPage"), query=("page", "per_page", "q", "department_id", "active"))
def users_list() -> Any:
    db, _actor = db_actor()
    args = query_args()
    page, per_page = paging(args)
    stmt = select(User).order_by(User.id)
    dep = single(args, "department_id")
    if dep is not None:
        stmt = stmt.where(User.department_id == id_param("department_id", dep))
    active = single(args, "active")
    if active is not None:
        if active not in ("true", "false"):
            raise ValidationFailed({"active": "must be true or false"})
        stmt = stmt.where(User.active.is_(active == "true"))
    users = list(db.scalars(stmt))
    q = (single(args, "q") or "").strip().casefold()
    if q:
        # In Python: SQLite's lower() knows only ASCII, and names are often Cyrillic.
        users = [u for u in users if q in u.full_name.casefold() or q in u.email.casefold()]
    chunk = users[(page - 1) * per_page: page * per_page]
    return page_json([user_dict(u) for u in chunk], len(users), page, per_page)


@api_route("/users/me", tag="users", response=ref("Me"),
           summary="The signed-in user with their effective rights")
def users_me() -> Any:
    db, actor = db_actor()
    user = _get(db, User, actor.user_id, "user")  # type: ignore[arg-type]
    perms = {e: {a: int(actor.level(e, a)) for a in ACTIONS} for e in ENTITIES}
    return {**_user_detail(db, user), "is_admin": actor.is_admin,
            "flags": sorted(actor.flags), "permissions": perms}


@api_route("/users/<id:user_id>", tag="users", summary="One user with their roles",
           response=ref("UserDetail"))
def users_get(user_id: int) -> Any:
    db, _actor = db_actor()
    return _user_detail(db, _get(db, User, user_id, "user"))


@api_route("/users", methods=("POST",), tag="users", status=201, body=ref("UserCreate"),
           response=ref("UserDetail"), summary="Create a user (admins), optionally with roles")
def users_create() -> Any:
    body = json_body()
    role_ids = _role_ids(body)
    only_keys(body, USER_FIELDS, "user")
    db, actor = db_actor()
    user = create_user(db, actor, **body)
    if role_ids:
        _set_roles(db, actor, user, role_ids)
    out = _user_detail(db, user)
    commit()
    return out, 201


@api_route("/users/<id:user_id>", methods=("PATCH", "PUT"), tag="users",
           body=ref("UserUpdate"), response=ref("UserDetail"),
           summary="Change a user: admins anyone, others their own profile")
def users_update(user_id: int) -> Any:
    body = json_body()
    role_ids = _role_ids(body)
    extra = {k: body.pop(k) for k in ("current_password", "revoke_credentials") if k in body}
    only_keys(body, USER_FIELDS, "user")
    db, actor = db_actor()
    if "password" in body and user_id == actor.user_id:  # one's own: the current one is checked
        with throttled_password_check(g.user.email):
            user = update_user(db, actor, user_id, **extra, **body)
    else:
        user = update_user(db, actor, user_id, **extra, **body)
    if role_ids is not None:
        _set_roles(db, actor, user, role_ids)
    out = _user_detail(db, user)
    commit()
    if "password" in body and g.get("auth_via") == "session" and user.id == actor.user_id:
        sign_in(user)  # the password change ended the other sessions, not this one
    return out


# --- departments -----------------------------------------------------------------------------

@api_route("/departments", tag="departments", summary="The department tree, flat",
           response=list_of("Department"))
def departments_list() -> Any:
    db, _actor = db_actor()
    return {"items": [department_dict(d) for d in
                      db.scalars(select(Department).order_by(Department.id))]}


@api_route("/departments/<id:department_id>", tag="departments", response=ref("DepartmentDetail"),
           summary="One department with its members and sub-departments")
def departments_get(department_id: int) -> Any:
    db, _actor = db_actor()
    dep = _get(db, Department, department_id, "department")
    members = db.scalars(select(User.id).where(User.department_id == dep.id).order_by(User.id))
    return {**department_dict(dep), "user_ids": list(members),
            "child_ids": sorted(c.id for c in dep.children)}


@api_route("/departments", methods=("POST",), tag="departments", status=201,
           body=ref("DepartmentInput"), response=ref("Department"),
           summary="Create a department (admins)")
def departments_create() -> Any:
    body = json_body()
    only_keys(body, DEPARTMENT_FIELDS, "department")
    db, actor = db_actor()
    out = department_dict(save_department(db, actor, **body))
    commit()
    return out, 201


@api_route("/departments/<id:department_id>", methods=("PATCH", "PUT"), tag="departments",
           body=ref("DepartmentInput"), response=ref("Department"),
           summary="Rename or move a department, or change its head (admins)")
def departments_update(department_id: int) -> Any:
    body = json_body()
    only_keys(body, DEPARTMENT_FIELDS, "department")
    db, actor = db_actor()
    out = department_dict(save_department(db, actor, department_id, **body))
    commit()
    return out


@api_route("/departments/<id:department_id>", methods=("DELETE",), tag="departments",
           status=204, extra={"errors": (409,)},
           summary="Delete an empty department (admins)")
def departments_delete(department_id: int) -> Any:
    db, actor = db_actor()
    delete_department(db, actor, department_id)
    commit()
    return "", 204


# --- roles and grants ------------------------------------------------------------------------

def _role_input(body: dict[str, Any]) -> dict[str, Any]:
    """``{"name", "permissions": {entity: {action: level}}, "flags": {flag: bool}}`` →
    ``save_role`` arguments; the service checks cell names and level values."""
    only_keys(body, ("name", "permissions", "flags"), "role")
    out: dict[str, Any] = {"name": body.get("name")}
    perms = body.get("permissions", {})
    if not isinstance(perms, dict) or not all(isinstance(v, dict) for v in perms.values()):
        raise ValidationFailed({"permissions": "must be {entity: {action: level}}"})
    out["levels"] = {(e, a): lv for e, cells in perms.items() for a, lv in cells.items()}
    flags = body.get("flags", {})
    if not isinstance(flags, dict) or not all(isinstance(v, bool) for v in flags.values()):
        raise ValidationFailed({"flags": "must be {right: true or false}"})
    out["flags"] = flags
    return out


@api_route("/roles", tag="roles", summary="Roles with their permission matrix",
           response=list_of("Role"))
def roles_list() -> Any:
    db, _actor = db_actor()
    return {"items": [role_dict(r) for r in db.scalars(select(Role).order_by(Role.id))]}


@api_route("/roles/<id:role_id>", tag="roles", summary="One role with its permission matrix",
           response=ref("Role"))
def roles_get(role_id: int) -> Any:
    db, _actor = db_actor()
    return role_dict(_get(db, Role, role_id, "role"))


@api_route("/roles", methods=("POST",), tag="roles", status=201, body=ref("RoleInput"),
           response=ref("Role"), summary="Create a role (admins)")
def roles_create() -> Any:
    body = json_body()
    db, actor = db_actor()
    out = role_dict(save_role(db, actor, **_role_input(body)))
    commit()
    return out, 201


@api_route("/roles/<id:role_id>", methods=("PATCH", "PUT"), tag="roles", body=ref("RoleInput"),
           response=ref("Role"), summary="Rename a role or change matrix cells and rights (admins)")
def roles_update(role_id: int) -> Any:
    body = json_body()
    db, actor = db_actor()
    out = role_dict(save_role(db, actor, role_id, **_role_input(body)))
    commit()
    return out


@api_route("/roles/<id:role_id>/grants", tag="roles", response=list_of("Grant"),
           summary="Who holds a role: users and departments")
def grants_list(role_id: int) -> Any:
    db, _actor = db_actor()
    role = _get(db, Role, role_id, "role")
    return {"items": [grant_dict(g) for g in sorted(role.grants, key=lambda g: g.id)]}


@api_route("/roles/<id:role_id>/grants", methods=("POST",), tag="roles", status=201,
           body=ref("GrantInput"), response=ref("Grant"),
           summary="Give a role to a user or to a department's members (admins)")
def grants_create(role_id: int) -> Any:
    body = json_body()
    only_keys(body, ("user_id", "department_id"), "grant")
    db, actor = db_actor()
    _get(db, Role, role_id, "role")
    grant = grant_role(db, actor, role_id, user_id=body.get("user_id"),
                       department_id=body.get("department_id"))
    out = grant_dict(grant)
    commit()
    return out, 201


@api_route("/roles/<id:role_id>/grants/<id:grant_id>", methods=("DELETE",), tag="roles",
           status=204, summary="Take a role back (admins)")
def grants_delete(role_id: int, grant_id: int) -> Any:
    db, actor = db_actor()
    grant = db.get(RoleGrant, grant_id)
    if grant is None or grant.role_id != role_id:
        raise NotFound(f"No grant {grant_id} of role {role_id}")
    revoke_grant(db, actor, grant_id)
    commit()
    return "", 204
