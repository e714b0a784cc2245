"""In-app notifications: who hears about what, and the reading side of the bell.

Kinds (``Notification.kind``):

- ``task`` — a user task was routed to the user (assigned, offered to their role, or
  delegated to them);
- ``overdue`` — a task the user holds passed its due time (once per task and user);
- ``comment`` — someone else commented on a record the user is responsible for (on its card,
  or under one of its feed items);
- ``mention`` — someone named the user (``@Full Name`` or ``@e-mail``) in a comment on a
  record or a feed item the user may see;
- ``process`` — a process's ``crm.notify`` service task;
- ``reassigned`` — a rule (or another person) made someone else responsible for a record the
  user was responsible for; ``text`` holds the new responsible's name.

``install_notifier(factory)`` watches every session of the app's sessionmaker: new task rows,
re-assigned tasks and new comments become notifications in the *same* transaction (written by
the flush that follows, at the latest by the commit), so a rolled-back change notifies nobody.
Overdue notifications need a clock rather than a write: ``notify_overdue`` adds them, and the
bell calls it for its user on every poll. Nothing here imports Flask.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from crm_models.activity import AuditEvent, Comment
from crm_models.db import utcnow
from crm_models.entities import ENTITY_MODELS
from crm_models.feed import FeedComment
from crm_models.org import User
from crm_models.services.feed import mentioned_users, readers_among
from crm_models.services.rows import add_outbox_listener
from engine.store import ProcessTask, TaskStatus
from engine.tasks import TASKS_INSERTED

from .models import Notification

KINDS = ("task", "overdue", "comment", "mention", "process", "reassigned")
_PENDING = "marshrut.notify_pending"
TITLE_MAX = 255


def install_notifier(factory: Any) -> None:
    """Turn task and comment rows flushed by any session of ``factory`` into notifications,
    and the task rows the engine inserts with Core (``engine.tasks.TASKS_INSERTED``: its
    sessions' ``info`` carries the listener, as the factory's ``info`` does)."""
    sa_event.listen(factory, "after_flush", _collect)
    sa_event.listen(factory, "after_flush_postexec", _emit)
    add_outbox_listener(factory, _outbox_inserted)
    info = dict(factory.kw.get("info") or {})
    listeners = list(info.get(TASKS_INSERTED, ()))
    if _tasks_inserted not in listeners:
        info[TASKS_INSERTED] = [*listeners, _tasks_inserted]
        factory.configure(info=info)


_NOTIFICATION_INSERT = Notification.__table__.insert()


def _tasks_inserted(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """``task`` notifications for the open task rows the engine has just inserted: one Core
    INSERT for all of them (the rows as ``_task_routed`` would add them one by one)."""
    now = utcnow()
    out = []
    for row in rows:
        if row["status"] != TaskStatus.OPEN:
            continue
        for uid in _active_users(session, [row["assignee_id"], *(row["candidate_ids"] or [])]):
            out.append({"user_id": uid, "created_at": now, "title": row["name"][:TITLE_MAX],
                        "text": row["instructions"] or "", "entity_type": row["entity_type"],
                        "entity_id": row["entity_id"], "source_label":
                        f"process {row['definition_key']}", "read_at": None, "kind": "task",
                        "task_id": row["id"], "event_id": None, "dedup_key": None})
    if out:
        session.connection().execute(_NOTIFICATION_INSERT, out)


def _collect(session: Session, _ctx: Any) -> None:
    # The new/dirty lists and attribute histories are still those of this flush here; the
    # notifications are added in after_flush_postexec, once the rows have their ids.
    pending: list[tuple[str, Any, Any]] = session.info.setdefault(_PENDING, [])
    for obj in session.new:
        if isinstance(obj, ProcessTask):
            pending.append(("task", obj, None))
        elif isinstance(obj, Comment):
            pending.append(("comment", obj, None))
        elif isinstance(obj, FeedComment):
            pending.append(("feed_comment", obj, None))
    for obj in session.dirty:
        if isinstance(obj, ProcessTask):
            added = inspect(obj).attrs.assignee_id.history.added
            if added and added[0] is not None and obj.status == TaskStatus.OPEN:
                pending.append(("delegated", obj, added[0]))


def _emit(session: Session, _ctx: Any) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    for kind, obj, extra in pending:
        if kind == "task":
            _task_routed(session, obj, [obj.assignee_id, *(obj.candidate_ids or [])])
        elif kind == "delegated":
            _task_routed(session, obj, [extra])
        elif kind == "comment":
            _commented(session, obj.entity_type, obj.entity_id, obj.author_id,
                       obj.author_label, obj.text, event_id=None)
        else:
            _feed_commented(session, obj)


def _outbox_inserted(session: Session, row: dict[str, Any]) -> None:
    """``crm_models.services.rows.OUTBOX_INSERTED``: an outbox event the service layer has
    just written with Core (in the write's transaction, as the flush of one would be)."""
    if _hands_away(row):
        _reassigned(session, row)


def _changed_responsible(ev: dict[str, Any]) -> Any:
    payload = ev["payload"] or {}
    changed = payload.get("changed") if ev["event_type"].endswith(".updated") else None
    return changed.get("responsible_id") if isinstance(changed, dict) else None


def _hands_away(ev: dict[str, Any]) -> bool:
    """Whether the event (``<entity>.updated``) moves a record from one responsible to another,
    done by someone other than the one who loses it."""
    pair = _changed_responsible(ev)
    if not (isinstance(pair, list) and len(pair) == 2) or ev["entity_type"] not in ENTITY_MODELS:
        return False
    old, new = pair
    return isinstance(old, int) and old != new and ev["actor_user_id"] != old


def _reassigned(session: Session, ev: dict[str, Any]) -> None:
    old, new = _changed_responsible(ev)
    record = session.get(ENTITY_MODELS[ev["entity_type"]], ev["entity_id"])
    if record is None or not _active_users(session, [old]):
        return
    new_user = session.get(User, new) if isinstance(new, int) else None
    title = getattr(record, "title", "") or getattr(record, "full_name", "") or f"#{record.id}"
    # Written at once with Core (with the event, in its transaction): an ORM object added
    # here would cost a flush of its own later (a service task's savepoint).
    session.connection().execute(_NOTIFICATION_INSERT, {
        "user_id": old, "created_at": utcnow(), "title": title[:TITLE_MAX],
        "text": new_user.full_name if new_user is not None else "",
        "entity_type": ev["entity_type"], "entity_id": ev["entity_id"],
        "source_label": ev["actor_label"] or "", "read_at": None, "kind": "reassigned",
        "task_id": None, "event_id": None, "dedup_key": None})


def _active_users(session: Session, user_ids: Iterable[int | None]) -> list[int]:
    """The ids that name active users: the engine stores plain integers (no foreign key),
    a notification needs a real, active recipient."""
    wanted = sorted({u for u in user_ids if isinstance(u, int) and not isinstance(u, bool)})
    if not wanted:
        return []
    # Usually the session holds them already (the assignment has just read them).
    held = {u: session.identity_map.get(identity_key(User, u)) for u in wanted}
    found = {u for u, user in held.items() if user is not None and user.active}
    missing = [u for u, user in held.items() if user is None]
    if missing:
        found.update(session.scalars(select(User.id).where(User.id.in_(missing),
                                                           User.active.is_(True))))
    return sorted(found)


def _task_routed(session: Session, task: ProcessTask, user_ids: Iterable[int | None]) -> None:
    if task.status != TaskStatus.OPEN:
        return
    for uid in _active_users(session, user_ids):
        session.add(Notification(
            user_id=uid, kind="task", title=task.name[:TITLE_MAX], text=task.instructions or "",
            entity_type=task.entity_type, entity_id=task.entity_id, task_id=task.id,
            source_label=f"process {task.definition_key}"))


def _commented(session: Session, entity_type: str, entity_id: int, author_id: int | None,
               author_label: str, text: str, *, event_id: int | None,
               mentioned: Sequence[int] | None = None) -> None:
    model = ENTITY_MODELS.get(entity_type)
    record = session.get(model, entity_id) if model is not None else None
    if record is None:
        return
    if mentioned is None:  # a card comment: mentions are read here, for readers of the record
        people = [u for u in mentioned_users(session, text) if u.id != author_id]
        mentioned = [u.id for u in readers_among(session, people, entity_type, entity_id)]
    title = getattr(record, "title", "") or f"#{record.id}"
    common = {"entity_type": entity_type, "entity_id": entity_id, "event_id": event_id,
              "title": title[:TITLE_MAX], "text": text[:2000], "source_label": author_label}
    for uid in _active_users(session, set(mentioned) - {author_id}):
        session.add(Notification(user_id=uid, kind="mention", **common))
    owner = record.responsible_id
    if owner != author_id and owner not in mentioned and _active_users(session, [owner]):
        session.add(Notification(user_id=owner, kind="comment", **common))


def _feed_commented(session: Session, comment: FeedComment) -> None:
    event = session.get(AuditEvent, comment.event_id)
    if event is None:
        return
    _commented(session, event.entity_type, event.entity_id, comment.author_id,
               comment.author_label, comment.text, event_id=event.id,
               mentioned=list(comment.mentions or []))


def _holders(task: ProcessTask) -> list[int]:
    if task.status == TaskStatus.CLAIMED:
        return [task.claimed_by] if task.claimed_by is not None else []
    return sorted({u for u in [task.assignee_id, *(task.candidate_ids or [])] if u is not None})


def notify_overdue(session: Session, tasks: Iterable[ProcessTask], user_id: int,
                   now: dt.datetime) -> int:
    """One ``overdue`` notification for ``user_id`` per task of ``tasks`` (their inbox) that is
    past due and has not been notified yet; returns how many were added. Safe against a
    concurrent call (the unique ``dedup_key`` decides; the loser adds nothing)."""
    due = [t for t in tasks if t.due_at is not None and t.due_at < now
           and t.status in TaskStatus.ACTIVE and user_id in _holders(t)]
    if not due:
        return 0
    keys = {f"overdue:{t.id}": t for t in due}
    done = set(session.scalars(select(Notification.dedup_key).where(
        Notification.user_id == user_id, Notification.dedup_key.in_(list(keys)))))
    added = 0
    for key, task in keys.items():
        if key in done:
            continue
        try:
            with session.begin_nested():
                session.add(Notification(
                    user_id=user_id, kind="overdue", title=task.name[:TITLE_MAX],
                    text=task.instructions or "", entity_type=task.entity_type,
                    entity_id=task.entity_id, task_id=task.id, dedup_key=key,
                    source_label=f"process {task.definition_key}"))
                session.flush()
            added += 1
        except IntegrityError:
            pass
    return added


# --- reading -----------------------------------------------------------------------------------

def unread_count(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def recent(session: Session, user_id: int, *, limit: int = 50,
           unread_only: bool = False) -> list[Notification]:
    q = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return list(session.scalars(q.order_by(Notification.id.desc()).limit(limit)))


def mark_read(session: Session, user_id: int, ids: Iterable[int] | None,
              now: dt.datetime) -> int:
    """Mark the user's notifications read (``ids`` None: all of them); someone else's ids
    are ignored. Returns how many changed."""
    q = update(Notification).where(Notification.user_id == user_id,
                                   Notification.read_at.is_(None))
    if ids is not None:
        wanted = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
        if not wanted:
            return 0
        q = q.where(Notification.id.in_(wanted))
    result = session.execute(q.values(read_at=now).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def notification_for(session: Session, user_id: int, notification_id: int) -> Notification | None:
    row = session.get(Notification, notification_id)
    return row if row is not None and row.user_id == user_id else None


def users_by_id(session: Session, ids: Iterable[int]) -> dict[int, User]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))}
