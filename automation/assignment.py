"""Who gets a user task: the engine's ``Assigner`` port implemented over the CRM's org chart.

Kinds (``AssignmentSpec.kind``; ``target`` as drawn in ``marshrut:assignee``):

- ``user`` — one user, by e-mail or id.
- ``role`` — every active member of a role (code, name or id) is a candidate; one claims it.
- ``department_head`` — the head of a department (name or id).
- ``responsible_department_head`` — the head of the entity responsible's department (when
  the responsible heads it themselves, the head of the department above).
- ``responsible`` — the entity's responsible.
- ``round_robin`` — the role's members in turn; the cursor is a locked row, so concurrent
  assignments rotate too.
- ``least_loaded`` — the role member with the fewest open tasks (ties: lowest id).

Out of office (``User.is_out_of_office(now)``), per ``out_of_office``:

- ``deputy`` — the person is replaced by their deputy (following a deputy who is away too); when
  nobody in the chain is available the task stays with the person, and the note says so.
- ``skip`` — pools simply leave the person out; a single person is passed over to the next one
  up: the head of their department (or of the department above when they head it).

Role members: users granted the role directly or through their department or any department
above it (the same rule ``crm_models.permissions.roles_of`` applies). Inactive users never get
tasks. Failures raise ``AssignmentFailed`` (an ``engine.errors.ServiceCallError`` that is not
retryable): the engine turns it into an incident on the user task.
"""
from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from crm_models.org import Department, Role, RoleGrant, User
from crm_models.permissions import department_tree, descendants
from crm_models.services import rows
from engine.errors import ServiceCallError
from engine.ports import Assignment, AssignmentSpec
from strictnum import MAX_ROW_ID, is_digits

from .models import RoundRobinCursor
from .snapshot import ENTITY_TYPES

KINDS = ("user", "role", "department_head", "responsible_department_head", "responsible",
         "round_robin", "least_loaded")
TARGETED = {"user", "role", "department_head", "round_robin", "least_loaded"}
OUT_OF_OFFICE = ("deputy", "skip")
_MAX_CHAIN = 10

#: ``(session, user_ids) -> {user_id: open task count}``; supplied by the engine's task store.
OpenTaskCounter = Callable[[Session, Sequence[int]], Mapping[int, int]]


class AssignmentFailed(ServiceCallError):
    code = "assignment_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


# --- lookups (shared with the service operations) ---------------------------------------------

#: A found user's department is read next (snapshots, department heads): load it alongside.
_WITH_DEPARTMENT = (joinedload(User.department),)
_USER_BY_EMAIL = (select(User).where(func.lower(User.email) == bindparam("email"))
                  .options(*_WITH_DEPARTMENT).execution_options(populate_existing=True))
#: ``session.info`` key: (weak reference to the transaction, {e-mail or id: user}) — the users
#: ``find_user`` found in the session's current transaction.
_FOUND_USERS = "marshrut_found_users"


def _numeric(ref: Any) -> bool:
    """An id reference: an int, or a string of ASCII digits (``"²"`` is a name, not an id)."""
    return isinstance(ref, int) or (isinstance(ref, str) and is_digits(ref.strip())
                                    and len(ref.strip()) <= 18)


def _row_id(number: int) -> bool:
    """Within the id columns' range: a larger number names no row (and PostgreSQL would
    refuse to compare it with an INTEGER column)."""
    return 0 < number <= MAX_ROW_ID


def find_user(session: Session, ref: Any) -> User | None:
    """A user by id (int or digits) or e-mail (case-insensitive).

    Within one transaction a user found by e-mail is found again without a query while it
    still has that address; every user found stays in the session until the transaction
    ends, so that the record snapshot and task assignment that follow a service task find
    them there too."""
    if isinstance(ref, bool) or ref is None:
        return None
    if _numeric(ref):
        key: int | str = int(ref)
        if not _row_id(key):
            return None
        queried = session.identity_map.get(session.identity_key(User, key)) is None
        user = session.get(User, key, options=_WITH_DEPARTMENT)
    elif isinstance(ref, str) and "@" in ref:
        key = ref.strip().lower()
        user = _found_users(session).get(key)
        if user is not None and user in session and user.email.lower() == key:
            return user
        # ``populate_existing``: the row as the database has it now (the autoflush has
        # written any change this session made), even for a user the session held.
        user = session.scalars(_USER_BY_EMAIL, {"email": key}).first()
        queried = True
    else:
        return None
    if user is not None:
        _found_users(session)[key] = user
        if queried and user.active:
            rows.note_active_user(session, user.id)
    return user


def _found_users(session: Session) -> dict[int | str, User]:
    transaction = session.get_transaction()
    if transaction is None:
        return {}  # none has begun: nothing was found in it
    found = session.info.get(_FOUND_USERS)
    if found is None or found[0]() is not transaction:
        # A weak reference: the transaction refers to the session, which a cycle through its
        # own ``info`` would keep alive (until a garbage collection) after it is closed.
        found = session.info[_FOUND_USERS] = (weakref.ref(transaction), {})
    return found[1]


def find_role(session: Session, ref: Any) -> Role | None:
    """A role by code, then by name (case-insensitive), then by id."""
    if isinstance(ref, bool) or ref is None:
        return None
    if _numeric(ref):
        return session.get(Role, int(ref)) if _row_id(int(ref)) else None
    if not isinstance(ref, str) or not ref.strip():
        return None
    name = ref.strip()
    role = session.scalars(select(Role).where(Role.code == name)).first()
    if role is None:
        role = session.scalars(select(Role).where(
            func.lower(Role.name) == name.lower())).first()
        if role is None:
            for r in session.scalars(select(Role)):  # SQLite's lower() is ASCII-only
                if r.name.casefold() == name.casefold():
                    return r
    return role


def find_department(session: Session, ref: Any) -> Department | None:
    """A department by id or by name (case-insensitive, Cyrillic too)."""
    if isinstance(ref, bool) or ref is None:
        return None
    if _numeric(ref):
        return session.get(Department, int(ref)) if _row_id(int(ref)) else None
    if not isinstance(ref, str) or not ref.strip():
        return None
    wanted = ref.strip().casefold()
    for dep in session.scalars(select(Department).order_by(Department.id)):
        if dep.name.strip().casefold() == wanted:
            return dep
    return None


def role_members(session: Session, role: Role) -> list[User]:
    """Active users holding the role directly or through their department (or one above)."""
    grants = list(session.execute(select(RoleGrant.user_id, RoleGrant.department_id)
                                  .where(RoleGrant.role_id == role.id)))
    user_ids = {u for u, _d in grants if u is not None}
    dep_roots = {d for _u, d in grants if d is not None}
    conds = []
    if user_ids:
        conds.append(User.id.in_(sorted(user_ids)))
    if dep_roots:
        deps = descendants(department_tree(session), dep_roots)
        conds.append(User.department_id.in_(sorted(deps)))
    if not conds:
        return []
    return list(session.scalars(select(User).where(or_(*conds), User.active.is_(True))
                                .order_by(User.id)))


def department_head(session: Session, dep: Department | None,
                    exclude: int | None = None) -> User | None:
    """The first head up the tree from ``dep`` who is not ``exclude``."""
    seen: set[int] = set()
    while dep is not None and dep.id not in seen:
        seen.add(dep.id)
        if dep.head_id is not None and dep.head_id != exclude:
            return session.get(User, dep.head_id)
        dep = dep.parent
    return None


def _is_away(user: User, now: dt.datetime) -> bool:
    return not user.active or user.is_out_of_office(now)


# --- the assigner -----------------------------------------------------------------------------

class CrmAssigner:
    """``engine.ports.Assigner`` over ``crm_models``; ``open_tasks`` counts each user's open
    tasks for ``least_loaded`` (the engine's task table, injected to keep this testable)."""

    def __init__(self, open_tasks: OpenTaskCounter | None = None) -> None:
        self._open_tasks = open_tasks

    # The engine calls this when a user task becomes ready.
    def resolve(self, session: Session, spec: AssignmentSpec, data: Mapping[str, Any],
                now: dt.datetime) -> Assignment:
        problem = self._shape_problem(spec)
        if problem:
            raise AssignmentFailed(problem)
        kind, target = spec.kind, (spec.target or "").strip()
        if kind == "user":
            return self._single(session, self._user(session, target), spec, now)
        if kind == "responsible":
            return self._single(session, self._responsible(session, data), spec, now)
        if kind == "department_head":
            dep = self._department(session, target)
            head = department_head(session, dep)
            if head is None:
                raise AssignmentFailed(f"department {dep.name!r} has no head")
            return self._single(session, head, spec, now)
        if kind == "responsible_department_head":
            resp = self._responsible(session, data)
            head = department_head(session, resp.department, exclude=resp.id)
            if head is None:
                head = department_head(session, resp.department)
            if head is None:
                raise AssignmentFailed(f"{resp.full_name} has no department head above them")
            return self._single(session, head, spec, now)
        members = self._pool(session, target, spec, now)
        if kind == "role":
            return Assignment(assignee_id=None, candidate_ids=tuple(u.id for u in members),
                              note=f"candidates: members of role {target}")
        if kind == "round_robin":
            return Assignment(assignee_id=self._next_in_turn(session, target, members).id,
                              note=f"round robin over role {target}")
        return Assignment(assignee_id=self._least_loaded(session, members).id,
                          note=f"least loaded member of role {target}")

    # Deploy-time check: a spec that can never resolve is refused with the element named.
    def validate(self, session: Session, spec: AssignmentSpec) -> str | None:
        problem = self._shape_problem(spec)
        if problem:
            return problem
        target = (spec.target or "").strip()
        try:
            if spec.kind == "user":
                self._user(session, target)
            elif spec.kind == "department_head":
                self._department(session, target)
            elif spec.kind in ("role", "round_robin", "least_loaded"):
                self._role(session, target)
        except AssignmentFailed as exc:
            return exc.message
        return None

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _shape_problem(spec: AssignmentSpec) -> str | None:
        if spec.kind not in KINDS:
            return f"unknown assignment {spec.kind!r}; use one of: {', '.join(KINDS)}"
        if spec.out_of_office not in OUT_OF_OFFICE:
            return (f"unknown out-of-office rule {spec.out_of_office!r}; "
                    f"use one of: {', '.join(OUT_OF_OFFICE)}")
        if spec.kind in TARGETED and not (spec.target or "").strip():
            what = {"user": "a user's e-mail", "department_head": "a department"}.get(
                spec.kind, "a role")
            return f"assignment {spec.kind!r} needs {what} as assignee"
        return None

    @staticmethod
    def _user(session: Session, target: str) -> User:
        user = find_user(session, target)
        if user is None:
            raise AssignmentFailed(f"no user {target!r}")
        if not user.active:
            raise AssignmentFailed(f"user {target!r} is deactivated")
        return user

    @staticmethod
    def _role(session: Session, target: str) -> Role:
        role = find_role(session, target)
        if role is None:
            raise AssignmentFailed(f"no role {target!r}")
        return role

    @staticmethod
    def _department(session: Session, target: str) -> Department:
        dep = find_department(session, target)
        if dep is None:
            raise AssignmentFailed(f"no department {target!r}")
        return dep

    @staticmethod
    def _responsible(session: Session, data: Mapping[str, Any]) -> User:
        for entity in ENTITY_TYPES:
            record = data.get(entity)
            if isinstance(record, Mapping) and record.get("responsible_id") is not None:
                user = session.get(User, record["responsible_id"])
                if user is None:
                    break
                return user
        raise AssignmentFailed("the process data names no responsible user")

    def _single(self, session: Session, user: User, spec: AssignmentSpec,
                now: dt.datetime) -> Assignment:
        if not _is_away(user, now):
            return Assignment(assignee_id=user.id)
        if spec.out_of_office == "deputy":
            seen = {user.id}
            deputy = user.deputy
            while deputy is not None and deputy.id not in seen and len(seen) < _MAX_CHAIN:
                if not _is_away(deputy, now):
                    return Assignment(assignee_id=deputy.id,
                                      note=f"deputy of {user.full_name} (out of office)")
                seen.add(deputy.id)
                deputy = deputy.deputy
            return Assignment(assignee_id=user.id,
                              note=f"{user.full_name} is out of office and has no available "
                                   "deputy")
        seen = {user.id}
        current = user
        while len(seen) < _MAX_CHAIN:
            nxt = department_head(session, current.department, exclude=current.id)
            if nxt is None or nxt.id in seen:
                break
            if not _is_away(nxt, now):
                return Assignment(assignee_id=nxt.id,
                                  note=f"{user.full_name} is out of office; passed to "
                                       f"{nxt.full_name}")
            seen.add(nxt.id)
            current = nxt
        return Assignment(assignee_id=user.id,
                          note=f"{user.full_name} is out of office and nobody is above them")

    def _pool(self, session: Session, target: str, spec: AssignmentSpec,
              now: dt.datetime) -> list[User]:
        role = self._role(session, target)
        members = role_members(session, role)
        if not members:
            raise AssignmentFailed(f"role {target!r} has no active members")
        pool: dict[int, User] = {}
        for user in members:
            if not _is_away(user, now):
                pool.setdefault(user.id, user)
            elif spec.out_of_office == "deputy":
                replaced = self._single(session, user, spec, now)
                if replaced.assignee_id != user.id and replaced.assignee_id is not None:
                    deputy = session.get(User, replaced.assignee_id)
                    if deputy is not None:
                        pool.setdefault(deputy.id, deputy)
        if not pool:
            raise AssignmentFailed(f"every member of role {target!r} is out of office")
        return sorted(pool.values(), key=lambda u: u.id)

    @staticmethod
    def _next_in_turn(session: Session, target: str, pool: list[User]) -> User:
        key = f"role:{target.casefold()}"[:120]
        locked = select(RoundRobinCursor).where(RoundRobinCursor.key == key).with_for_update()
        cursor = session.scalars(locked).first()
        if cursor is None:
            try:  # a savepoint: a concurrent first insert must not spoil the caller's transaction
                with session.begin_nested():
                    session.add(RoundRobinCursor(key=key, last_user_id=None))
            except IntegrityError:
                pass
            cursor = session.scalars(locked).one()
        last = cursor.last_user_id
        chosen = next((u for u in pool if last is None or u.id > last), pool[0])
        cursor.last_user_id = chosen.id
        cursor.updated_at = dt.datetime.now(dt.UTC)
        session.flush()
        return chosen

    def _least_loaded(self, session: Session, pool: list[User]) -> User:
        counts = self._open_tasks(session, [u.id for u in pool]) if self._open_tasks else {}
        return min(pool, key=lambda u: (counts.get(u.id, 0), u.id))
