"""The inbox query and its keyset ("seek") pages.

The inbox of a user is the open tasks assigned to them, the open tasks offered to them (they
are one of the candidates) and the tasks they claimed, in the order (priority, due time with
tasks without one after those with one, id). The order is spelled out (``NULLS LAST``) because
the databases disagree by default: SQLite puts NULL first, PostgreSQL last.

A page starts after the last task of the page before, named by an opaque cursor: URL-safe
base64 of ``["task", priority, due (ISO 8601 or null), id]``. The position is one of the
total order, so it stays valid while tasks come and go: a task finished in between is simply
not there, a new one shows up where it belongs. Each branch of the query (three index
lookups, see ``inbox_query``) carries the seek predicate itself, so a later page reads fewer
index entries and rows, never more. (The same approach as the CRM's record lists,
``crm_models.services.keyset``, which ``engine`` must not import.)
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from .errors import EngineError
from .store import ProcessTask, ProcessTaskCandidate, TaskStatus

#: which part of the inbox: all of it, "mine" (assigned to me or claimed by me), "offered"
#: (open tasks offered to me as one of the candidates, to claim)
SCOPES = ("all", "mine", "offered")
MAX_CURSOR = 400  # as a record list's cursor (``crm_models.services.keyset``)
_BAD_CURSOR = "is not a cursor of the task list (take the 'next' of the page before)"


class BadCursor(EngineError):
    """``after`` is not a cursor this list gave out (names the parameter). A 422 like every
    other refused list parameter of the API (``InvalidTaskData``, a record list's cursor)."""

    code = "validation_failed"
    status = 422

    def __init__(self, name: str = "after") -> None:
        super().__init__(f"Invalid value in: {name}", fields={name: _BAD_CURSOR})


@dataclass(frozen=True)
class InboxKey:
    """A task's position in inbox order."""

    priority: int
    due_at: dt.datetime | None
    id: int

    @classmethod
    def of(cls, task: ProcessTask) -> InboxKey:
        return cls(task.priority, task.due_at, task.id)


@dataclass(frozen=True)
class InboxPage:
    """Up to ``limit`` tasks in inbox order; ``next`` is the ``after`` of the following page,
    None on the last page."""

    tasks: list[ProcessTask]
    next: str | None


def encode_cursor(key: InboxKey) -> str:
    due = key.due_at.astimezone(dt.UTC).isoformat() if key.due_at is not None else None
    raw = json.dumps(["task", key.priority, due, key.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _small_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -2**31 < value < 2**31


def decode_cursor(cursor: Any, name: str = "after") -> InboxKey:
    """The position named by ``cursor``; ``BadCursor`` (naming ``name``) for anything that is
    not a cursor of this list — garbage, a record list's cursor, a cut-off string."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR:
        raise BadCursor(name)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tag, priority, due, task_id = json.loads(raw)
        when = None if due is None else dt.datetime.fromisoformat(due)
    except (binascii.Error, ValueError, TypeError):  # bad base64/JSON/shape/date
        raise BadCursor(name) from None
    if tag != "task" or not _small_int(priority) or not _small_int(task_id) or task_id <= 0 \
            or (when is not None and when.tzinfo is None):
        raise BadCursor(name)
    return InboxKey(priority, when, task_id)


def after_key(key: InboxKey) -> ColumnElement[bool]:
    """Tasks that come after ``key`` in inbox order (due times: set ones, then none)."""
    t = ProcessTask
    if key.due_at is None:  # only tasks without a due time can follow within the priority
        same = and_(t.due_at.is_(None), t.id > key.id)
    else:
        same = or_(t.due_at > key.due_at, t.due_at.is_(None),
                   and_(t.due_at == key.due_at, t.id > key.id))
    return or_(t.priority > key.priority, and_(t.priority == key.priority, same))


def inbox_order() -> tuple[Any, ...]:
    t = ProcessTask
    return t.priority, t.due_at.asc().nulls_last(), t.id


def inbox_ids(user_id: int, *, scope: str = "all", after: InboxKey | None = None,
              limit: int | None = None) -> Any:
    """The ids of the user's inbox (or of one ``scope`` of it) after ``after``: a UNION ALL
    of index lookups. Each branch repeats a partial index's predicate literally
    (``status = 'open'`` …) so both SQLite and PostgreSQL can use it; none reads rows of
    finished tasks. A task may come twice (assigned and offered); callers match ids with IN.

    With ``limit`` each branch gives only its first ``limit`` ids in inbox order (every task
    of the first ``limit`` overall is among the first ``limit`` of a branch it is in), so a
    page reads at most 3 × ``limit`` task rows however long the inbox; the branches sort
    index entries (SQLite keeps NULL due times first in the index, hence a sort there;
    PostgreSQL's index order is the inbox order) instead of rows."""
    if scope not in SCOPES:
        raise EngineError(f"unknown inbox scope {scope!r}", fields={"scope": "unknown"})
    task, cand = ProcessTask, ProcessTaskCandidate
    # Literals, not bound parameters: a planner cannot match a parameter against an index
    # predicate (PostgreSQL's generic plans of prepared statements, SQLite's planner).
    is_open = task.status == literal_column(f"'{TaskStatus.OPEN}'")
    is_claimed = task.status == literal_column(f"'{TaskStatus.CLAIMED}'")
    seek = after_key(after) if after is not None else true()
    branches = []
    if scope in ("all", "mine"):
        branches.append(select(task.id).where(is_open, task.assignee_id == user_id, seek))
    if scope in ("all", "offered"):
        branches.append(select(cand.task_id).join(task, task.id == cand.task_id)
                        .where(cand.user_id == user_id, is_open, seek))
    if scope in ("all", "mine"):
        branches.append(select(task.id).where(is_claimed, task.claimed_by == user_id, seek))
    if limit is not None:  # (a compound SELECT's parts take ORDER BY/LIMIT only as subqueries)
        tops = [b.order_by(*inbox_order()).limit(limit).subquery() for b in branches]
        branches = [select(top.c[0]) for top in tops]
    return union_all(*branches)


def inbox_query(user_id: int, *, scope: str = "all", after: InboxKey | None = None,
                limit: int | None = None) -> Any:
    """The inbox as one SELECT: the tasks whose ids ``inbox_ids`` finds, in inbox order
    (the first ``limit`` of them with a limit)."""
    q = (select(ProcessTask)
         .where(ProcessTask.id.in_(inbox_ids(user_id, scope=scope, after=after, limit=limit)))
         .order_by(*inbox_order()))
    return q if limit is None else q.limit(limit)


def inbox_page(session: Session, user_id: int, *, limit: int, after: str | None = None,
               scope: str = "all") -> InboxPage:
    """One page of the inbox: up to ``limit`` tasks after the cursor ``after`` (None: from the
    start). Reads one row more than it returns, to know whether a next page exists."""
    if not 0 < limit <= 10_000:
        raise EngineError("limit must be 1–10000", fields={"limit": "must be 1–10000"})
    key = decode_cursor(after) if after is not None else None
    params: dict[str, Any] = {"uid": user_id, "lim": limit + 1}
    seek = "none"
    if key is not None:
        params.update(a_pri=key.priority, a_id=key.id)
        seek = "nodue" if key.due_at is None else "due"
        if key.due_at is not None:
            params["a_due"] = key.due_at
    rows: Sequence[ProcessTask] = session.scalars(_page_query(scope, seek), params).all()
    if len(rows) <= limit:
        return InboxPage(list(rows), None)
    page = list(rows[:limit])
    return InboxPage(page, encode_cursor(InboxKey.of(page[-1])))


@functools.cache
def _page_query(scope: str, seek: str) -> Any:
    """``inbox_query`` of a page as one statement per (scope, kind of cursor), built once with
    bound parameters (``uid``, ``lim``, the cursor's ``a_pri``/``a_due``/``a_id``): building
    and cache-keying the statement anew cost more than running it (about 1 ms a call)."""
    if scope not in SCOPES:
        raise EngineError(f"unknown inbox scope {scope!r}", fields={"scope": "unknown"})
    key = None
    if seek != "none":
        due = bindparam("a_due", type_=ProcessTask.__table__.c.due_at.type)
        key = InboxKey(bindparam("a_pri", type_=Integer),  # type: ignore[arg-type]
                       None if seek == "nodue" else due, bindparam("a_id", type_=Integer))
    return inbox_query(bindparam("uid", type_=Integer), scope=scope,  # type: ignore[arg-type]
                       after=key, limit=bindparam("lim", type_=Integer))  # type: ignore[arg-type]


def inbox_slice(session: Session, user_id: int, *, offset: int, limit: int) -> list[ProcessTask]:
    """``limit`` inbox tasks from position ``offset``: for clients that page by offset
    (Bitrix24's ``start``). It costs the index lookups of the whole inbox and a top-N sort,
    growing with ``offset``; lists of our own page by cursor (``inbox_page``)."""
    if offset < 0 or not 0 < limit <= 10_000:
        raise EngineError("offset must be ≥ 0 and limit 1–10000",
                          fields={"offset" if offset < 0 else "limit": "out of range"})
    top = inbox_query(user_id, limit=offset + limit)  # each branch: its first offset+limit
    return list(session.scalars(top.limit(limit).offset(offset)))


def inbox_count(session: Session, user_id: int, *, scope: str = "all") -> int:
    """How many tasks the inbox (or one ``scope`` of it) holds, from the same index lookups
    (a task that is both assigned and offered counts once). Only "all" can see a task twice:
    "mine" is open-assigned plus claimed (two statuses), "offered" one branch of a unique
    (user, task) key — so they count rows without the sort a DISTINCT costs."""
    return session.scalar(count_query(user_id, scope=scope)) or 0


def count_query(user_id: int, *, scope: str = "all") -> Any:
    ids = inbox_ids(user_id, scope=scope).subquery()
    counted = func.count(func.distinct(ids.c[0])) if scope == "all" else func.count()
    return select(counted).select_from(ids)
