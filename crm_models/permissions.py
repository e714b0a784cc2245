"""Who may do what: actors, effective rights from roles, and row scopes for queries.

An ``Actor`` is resolved once per request (or per process step) and carries everything the
checks need, so a check never queries the database.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session

from .errors import PermissionDenied
from .org import ACTIONS, ENTITIES, FLAGS, Department, PermLevel, Role, RoleGrant, User


@dataclass(frozen=True)
class Actor:
    """The one on whose behalf a CRM function runs: a user, or a process acting as the system."""

    user_id: int | None
    label: str
    levels: dict[tuple[str, str], PermLevel]
    flags: frozenset[str]
    department_user_ids: frozenset[int] = frozenset()
    subtree_user_ids: frozenset[int] = frozenset()
    locale: str = "ru"
    timezone: str = "Europe/Moscow"
    extra: dict[str, Any] = field(default_factory=dict)

    def level(self, entity: str, action: str) -> PermLevel:
        return self.levels.get((entity, action), PermLevel.NONE)

    def has_flag(self, flag: str) -> bool:
        return flag in self.flags

    @property
    def is_admin(self) -> bool:
        return self.has_flag("manage_settings")

    def allows_record(self, entity: str, action: str, responsible_id: int | None,
                      opened: bool) -> bool:
        """Whether ``action`` is allowed on one record with this responsible and open flag."""
        level = self.level(entity, action)
        if level == PermLevel.ALL:
            return True
        if level == PermLevel.NONE:
            return False
        if responsible_id is not None and responsible_id == self.user_id:
            return True
        if level >= PermLevel.DEPARTMENT and responsible_id in self.department_user_ids:
            return True
        if level >= PermLevel.SUBDEPARTMENTS and responsible_id in self.subtree_user_ids:
            return True
        return level >= PermLevel.OPEN and bool(opened)

    def scope(self, model: Any, action: str = "read") -> ColumnElement[bool]:
        """A WHERE clause selecting the rows of ``model`` this actor may ``action``."""
        level = self.level(model.entity_type, action)
        if level == PermLevel.ALL:
            return true()
        if level == PermLevel.NONE:
            return false()
        users = {self.user_id} if self.user_id is not None else set()
        if level >= PermLevel.DEPARTMENT:
            users |= self.department_user_ids
        if level >= PermLevel.SUBDEPARTMENTS:
            users |= self.subtree_user_ids
        clause: ColumnElement[bool] = model.responsible_id.in_(sorted(users)) if users else false()
        if level >= PermLevel.OPEN:
            clause = or_(clause, model.opened.is_(True))
        return clause

    def require(self, entity: str, action: str, record: Any | None = None) -> None:
        if record is None:
            ok = self.level(entity, action) > PermLevel.NONE
        else:
            ok = self.allows_record(entity, action, record.responsible_id, record.opened)
        if not ok:
            raise PermissionDenied(f"You may not {action} this {entity}")

    def require_flag(self, flag: str) -> None:
        if not self.has_flag(flag):
            raise PermissionDenied(f"This needs the right '{flag}'")


ALL_LEVELS = {(e, a): PermLevel.ALL for e in ENTITIES for a in ACTIONS}


def system_actor(label: str = "system") -> Actor:
    """Acts with every right: used by processes, imports and the CLI."""
    return Actor(user_id=None, label=label, levels=dict(ALL_LEVELS), flags=frozenset(FLAGS))


def department_tree(session: Session) -> dict[int, list[int]]:
    """Department id → ids of its direct children."""
    tree: dict[int, list[int]] = {}
    for dep_id, parent_id in session.execute(select(Department.id, Department.parent_id)):
        tree.setdefault(dep_id, [])
        if parent_id is not None:
            tree.setdefault(parent_id, []).append(dep_id)
    return tree


def descendants(tree: dict[int, list[int]], roots: Iterable[int]) -> set[int]:
    out: set[int] = set()
    stack = list(roots)
    while stack:
        d = stack.pop()
        if d in out:
            continue
        out.add(d)
        stack.extend(tree.get(d, ()))
    return out


def ancestors(session: Session, dep_id: int | None) -> list[int]:
    parents = dict(session.execute(select(Department.id, Department.parent_id)).all())
    out: list[int] = []
    while dep_id is not None and dep_id not in out:
        out.append(dep_id)
        dep_id = parents.get(dep_id)
    return out


def roles_of(session: Session, user: User) -> list[Role]:
    """Roles granted to the user directly or to their department or any department above it."""
    deps = ancestors(session, user.department_id)
    cond = RoleGrant.user_id == user.id
    if deps:
        cond = or_(cond, RoleGrant.department_id.in_(deps))
    role_ids = select(RoleGrant.role_id).where(cond)
    return list(session.scalars(select(Role).where(Role.id.in_(role_ids))))


def actor_for(session: Session, user: User) -> Actor:
    """Resolve a user's effective rights: per cell, the highest level any of their roles gives."""
    if not user.active:
        raise PermissionDenied("This user is deactivated")
    levels: dict[tuple[str, str], PermLevel] = {}
    flags: set[str] = set()
    for role in roles_of(session, user):
        for p in role.permissions:
            key = (p.entity, p.action)
            levels[key] = max(levels.get(key, PermLevel.NONE), PermLevel(p.level))
        flags |= {f for f in FLAGS if getattr(role, f)}
    own_deps = {user.department_id} if user.department_id else set()
    own_deps |= set(session.scalars(select(Department.id).where(Department.head_id == user.id)))
    subtree = descendants(department_tree(session), own_deps)
    dep_users = _users_in(session, own_deps)
    sub_users = _users_in(session, subtree)
    return Actor(
        user_id=user.id, label=user.full_name, levels=levels, flags=frozenset(flags),
        department_user_ids=frozenset(dep_users), subtree_user_ids=frozenset(sub_users),
        locale=user.locale, timezone=user.timezone,
    )


def _users_in(session: Session, dep_ids: set[int]) -> set[int]:
    if not dep_ids:
        return set()
    return set(session.scalars(select(User.id).where(User.department_id.in_(dep_ids))))
