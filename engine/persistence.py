"""Row locking and flushing with conflicts mapped to ``engine.errors.Conflict``.

Concurrency contract: every change to an instance first locks its row (``SELECT … FOR
UPDATE`` — PostgreSQL serializes on it; SQLite ignores it but allows one writer at a time)
and then re-reads it; the ``version`` column (SQLAlchemy's ``version_id_col``) makes a write
over a stale read fail. Whoever loses — a stale version, or SQLite refusing to upgrade a
stale read transaction ("database is locked") — gets ``Conflict``, i.e. HTTP 409.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, bindparam, inspect, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import TypeDecorator

from .errors import Conflict, NotFound
from .store import ProcessHistory, ProcessInstance, ProcessTask


def lock_instance(session: Session, instance_id: int) -> ProcessInstance:
    inst = session.execute(
        select(ProcessInstance).where(ProcessInstance.id == instance_id).with_for_update()
        .execution_options(populate_existing=True)).scalar_one_or_none()
    if inst is None:
        raise NotFound(f"process instance {instance_id} not found")
    return inst


def lock_task(session: Session, task_id: int) -> ProcessTask:
    row = session.execute(
        select(ProcessTask).where(ProcessTask.id == task_id).with_for_update()
        .execution_options(populate_existing=True)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"task {task_id} not found")
    return row


_CONFLICT = "someone else changed this process at the same time; reload and try again"


@contextmanager
def conflicts_guarded() -> Iterator[None]:
    """Map lost races inside the block (including autoflushes) to ``Conflict``."""
    try:
        yield
    except StaleDataError:
        raise Conflict(_CONFLICT) from None
    except OperationalError as exc:
        text = str(exc.orig).lower()
        if "locked" in text or "busy" in text or "could not serialize" in text:
            raise Conflict(_CONFLICT) from None
        raise


def flush(session: Session) -> None:
    """Write pending changes now, so conflicts surface inside the engine call."""
    with conflicts_guarded():
        session.flush()


def add_history(session: Session, instance_id: int, at: dt.datetime, event: str,
                element_id: str | None, message: str, user_id: int | None = None,
                changes: dict[str, Any] | None = None) -> None:
    session.add(ProcessHistory(instance_id=instance_id, at=at, event=event,
                               element_id=element_id, user_id=user_id, message=message,
                               changes=changes))


class EncodedJSON(TypeDecorator[str]):
    """A JSON column's value given as its JSON text already (``json.dumps`` of it, as the
    column's own type would write it): bound as it is, so a document that was encoded once
    to measure it is not encoded again to store it. Same column type (PostgreSQL casts the
    parameter to ``JSON``)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Any) -> None:
        return None


_INSTANCE = ProcessInstance.__table__
_UPDATES: dict[tuple[str, ...], Any] = {}
_ENCODED = EncodedJSON()


def write_instance(session: Session, inst: ProcessInstance, values: dict[str, Any], *,
                   encoded: dict[str, str] | None = None) -> None:
    """One Core UPDATE of the instance row: ``values`` and every attribute changed on the
    object since it was loaded, with the optimistic-lock check of ``version`` (as the ORM's
    ``version_id_col`` does it: a row someone else changed meanwhile raises
    ``StaleDataError``, i.e. ``Conflict`` under ``conflicts_guarded``). The object then
    holds what the row holds, as after a flush, without a flush: no unit of work to sort,
    no history to collect, nothing left for the next flush. ``encoded``: the JSON text of
    some of ``values`` (``json.dumps`` of each), written instead of encoding them again.

    The object is also registered as changed in the current (nested) transaction, so a
    rolled-back savepoint expires it as it would after a flush."""
    state = inspect(inst)
    changed = dict(values)
    for key in state.committed_state:  # changed on the object, e.g. ``definition_id``
        changed.setdefault(key, state.dict.get(key))
    old = inst.version
    params = {**changed, "version": old + 1}
    encoded = encoded or {}
    columns = tuple(sorted(params))
    key = (columns, tuple(sorted(encoded)))
    stmt = _UPDATES.get(key)
    if stmt is None:
        stmt = _UPDATES[key] = (
            update(_INSTANCE)
            .where(_INSTANCE.c.id == bindparam("_id"), _INSTANCE.c.version == bindparam("_old"))
            .values({c: bindparam(c, type_=_ENCODED if c in encoded else _INSTANCE.c[c].type)
                     for c in columns}))
    result = session.connection().execute(stmt, {**params, **encoded, "_id": inst.id,
                                                 "_old": old})
    if result.rowcount != 1:
        raise StaleDataError(f"process_instance {inst.id} was changed by someone else "
                             f"(version {old} expected)")
    for key, value in params.items():
        set_committed_value(inst, key, value)
    # Internals, used as the flush itself uses them: the object is clean now, and a
    # rollback of this transaction (a savepoint) must expire it.
    session._register_altered([state])  # noqa: SLF001
    state._commit_all(state.dict, session.identity_map)  # noqa: SLF001
