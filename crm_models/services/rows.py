"""The statements behind every CRM write, in as few round trips as the database allows.

A write locks its record, checks the users and records it points at, finds a deal's stage and
writes its audit row. Each statement here is built once and run with bound parameters
(building and cache-keying an ORM statement costs more than running it on SQLite); checks that
need no ORM object read plain columns through Core (the session autoflushes first, as for an
ORM query, so they see its pending changes).
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, Update, bindparam, inspect, select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import MANYTOONE, Session

from ..activity import AuditEvent
from ..entities import Pipeline, Stage, deal_contact
from ..errors import Conflict
from ..org import User

T = TypeVar("T")
_MISSING = object()


def autoflush(session: Session) -> None:
    """Flush pending changes as a query would first (not inside ``no_autoflush``)."""
    if session.autoflush:
        session.flush()


@dataclass(frozen=True)
class _RecordSql:
    """The statements for one entity's records; ``rid`` is the record id."""

    #: Column attribute keys, in the order of the rows ``lock`` and ``lock_returning`` read.
    keys: tuple[str, ...]
    #: ORM, plain: the record (identity map objects come back as they are).
    read: Select[Any]
    #: ORM: the record locked and as the database has it now (what the session holds is
    #: overwritten); FOR UPDATE is rendered on PostgreSQL, SQLite ignores it.
    load_locked: Select[Any]
    #: SQLite: take the database write lock with a no-op write that returns the row's columns.
    lock_returning: Update
    #: SQLite, ORM: the record loaded from ``lock_returning`` (overwriting what the session
    #: holds), for a record the session does not hold yet.
    load_lock_returning: Select[Any]
    #: Other databases: the row's columns, locked.
    lock: Select[Any]
    #: Whether the row exists.
    exists: Select[Any]
    #: Which of the ids ``ids`` exist.
    existing: Select[Any]
    #: (many-to-one relationship, its foreign key attribute) pairs.
    references: tuple[tuple[str, str], ...]


def _record_sql(model: Any) -> _RecordSql:
    table = model.__table__
    attrs = inspect(model).column_attrs
    keys = tuple(a.key for a in attrs)
    columns = [a.columns[0] for a in attrs]
    rid = bindparam("rid")
    mapper = inspect(model)
    references = tuple(
        (rel.key, mapper.get_property_by_column(next(iter(rel.local_columns))).key)
        for rel in mapper.relationships
        if rel.direction is MANYTOONE and len(rel.local_columns) == 1)
    lock_returning = (sa_update(table).where(table.c.id == rid)
                      .values(opened=table.c.opened).returning(*columns))
    return _RecordSql(
        keys=keys,
        read=select(model).where(model.id == rid),
        load_locked=select(model).where(model.id == rid).with_for_update()
        .execution_options(populate_existing=True),
        lock_returning=lock_returning,
        load_lock_returning=select(model).from_statement(lock_returning)
        .execution_options(populate_existing=True),
        lock=select(*columns).where(table.c.id == rid).with_for_update(),
        exists=select(table.c.id).where(table.c.id == bindparam("id")),
        existing=select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True))),
        references=references,
    )


#: Built on first use, when the mappers are configured (every model module is imported).
_SQL: dict[type[Any], _RecordSql] = {}


def _sql(model: Any) -> _RecordSql:
    sql = _SQL.get(model)
    if sql is None:
        sql = _SQL[model] = _record_sql(model)
    return sql


_AUDIT_INSERT = AuditEvent.__table__.insert()
_users = User.__table__
_USER_ACTIVE = select(_users.c.active).where(_users.c.id == bindparam("id"))
_CONTACT_IDS = (select(deal_contact.c.contact_id).where(deal_contact.c.deal_id == bindparam("rid"))
                .order_by(deal_contact.c.contact_id))
_FIRST_STAGE = (select(Pipeline.id, Stage).outerjoin(Stage, Stage.pipeline_id == Pipeline.id)
                .where(Pipeline.id == bindparam("pid")).order_by(Stage.sort, Stage.id).limit(1))
#: A new deal's checks in one statement: its responsible's ``active`` flag, and the pipeline
#: (outer-joined: NULL when there is none) with its first stage (NULL when it has none).
_DEAL_CHECKS = (select(_users.c.active, Pipeline.id, Stage).select_from(_users)
                .outerjoin(Pipeline, Pipeline.id == bindparam("pid"))
                .outerjoin(Stage, Stage.pipeline_id == Pipeline.id)
                .where(_users.c.id == bindparam("uid")).order_by(Stage.sort, Stage.id).limit(1))
_STAGE_BY_CODE = select(Stage).where(Stage.code == bindparam("code"))


def _core(session: Session, model: Any) -> Any:
    """The session's connection, for the plain Core statements of this module (on tables):
    ``Session.execute`` would add nothing to them (they are not ORM statements, so they
    never autoflush either) but its own overhead."""
    return session.connection(bind_arguments={"mapper": model})


def read_record(session: Session, model: Any, record_id: int) -> Any | None:
    """The record (asked of the database: None once another transaction deleted it)."""
    return session.scalars(_sql(model).read, {"rid": record_id}).first()


def lock_record(session: Session, model: Any, record_id: int) -> Any | None:
    """The record, its row locked until the transaction ends and every attribute the session
    has loaded of it as the database has it now; None when there is no such row.

    A record the session already holds is compared with the locked row instead of being
    loaded again: when the loaded columns (and, for a deal, its loaded contacts) match, it is
    what a reload would give, and it keeps the related objects it has loaded. Otherwise it is
    refreshed from the database, pending unflushed changes included (as ``populate_existing``
    does).
    """
    sql = _sql(model)
    params = {"rid": record_id}
    sqlite = session.get_bind().dialect.name == "sqlite"
    # The flush may be this transaction's first write, which takes SQLite's lock.
    if sqlite:
        _sqlite_write(lambda: autoflush(session))
    else:
        autoflush(session)
    held = session.identity_map.get(session.identity_key(model, record_id))
    if held is None or not session.autoflush or inspect(held).modified:
        if sqlite:
            return _sqlite_write(lambda: session.scalars(sql.load_lock_returning,
                                                         params).first())
        return session.scalars(sql.load_locked, params).first()
    if sqlite:
        row = _sqlite_write(lambda: _core(session, model).execute(sql.lock_returning,
                                                                  params).first())
    else:
        row = _core(session, model).execute(sql.lock, params).first()
    if row is None:
        return None
    loaded = held.__dict__
    if any(loaded.get(key, _MISSING) != value for key, value in zip(sql.keys, row,
                                                                       strict=True)):
        # Changed since this session read it: load it as the lock sees it (the lock is held).
        return session.scalars(sql.load_locked, params).first()
    if "contacts" in loaded and [c.id for c in held.contacts] != list(
            _core(session, model).scalars(_CONTACT_IDS, params)):
        session.expire(held, ["contacts"])
    expire_stale_references(session, held)
    return held


def expire_stale_references(session: Session, record: Any) -> None:
    """Expire each loaded many-to-one relationship of ``record`` that no longer holds the
    object its foreign key names (the key was changed, not the relationship), so that it
    loads that object when next read, as after a reload. A relationship set in this
    session is left alone: the flush writes its key from it."""
    loaded = record.__dict__
    state = inspect(record)
    stale = []
    for relation, column in _sql(type(record)).references:
        if relation not in loaded or relation in state.committed_state:
            continue
        target = loaded[relation]
        target_id = None
        if target is not None:
            identity = inspect(target).identity
            target_id = identity[0] if identity else _MISSING
        if target_id != loaded.get(column, _MISSING):
            stale.append(relation)
    if stale:
        session.expire(record, stale)


def _sqlite_write(run: Callable[[], T]) -> T:
    """Run a statement that takes SQLite's database write lock. If this transaction had read
    before another one committed, SQLite cannot give it the lock any more: that is a conflict
    to retry, not a server error."""
    try:
        return run()
    except OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        raise Conflict("Someone else changed this record at the same moment; "
                       "reload it and try again") from None


#: ``session.info`` key: (weak reference to the transaction, ids of the users read from the
#: database as active in it).
_ACTIVE_READ = "marshrut_active_users_read"


def _active_read(session: Session) -> set[int] | None:
    transaction = session.get_transaction()
    if transaction is None:
        return None
    held = session.info.get(_ACTIVE_READ)
    if held is None or held[0]() is not transaction:
        # A weak reference: the transaction refers to the session (no cycle through ``info``).
        held = session.info[_ACTIVE_READ] = (weakref.ref(transaction), set())
    return held[1]


def note_active_user(session: Session, user_id: int) -> None:
    """Say that this transaction has just read ``user_id`` from the database as active (not
    from the identity map, which may hold a user another session has since deactivated):
    ``user_active`` then answers for it without asking again. Reads are not undone by a
    savepoint's rollback, so this holds until the transaction ends."""
    read = _active_read(session)
    if read is not None:
        read.add(user_id)


def user_active(session: Session, user_id: int) -> bool | None:
    """The user's ``active`` flag in the database; None when there is no such user. Asked
    once per transaction for a user found active (see ``note_active_user``)."""
    read = _active_read(session)
    if read is not None and user_id in read:
        return True
    active = _core(session, User).scalar(_USER_ACTIVE, {"id": user_id})
    if active:
        note_active_user(session, user_id)
    return active


def record_exists(session: Session, model: Any, record_id: int) -> bool:
    return _core(session, model).scalar(_sql(model).exists, {"id": record_id}) is not None


def existing_ids(session: Session, model: Any, ids: Iterable[int]) -> set[int]:
    return set(_core(session, model).scalars(_sql(model).existing, {"ids": list(ids)}))


def first_stage(session: Session, pipeline_id: int) -> tuple[bool, Stage | None]:
    """(whether the pipeline exists, its first stage or None)."""
    row = session.execute(_FIRST_STAGE, {"pid": pipeline_id}).first()
    if row is None:
        return False, None
    return True, row[1]


def deal_checks(session: Session, user_id: int,
                pipeline_id: int) -> tuple[bool, bool, Stage | None] | None:
    """What creating a deal checks, read at once: (whether the user is active, whether the
    pipeline exists, its first stage or None); None when there is no such user."""
    row = session.execute(_DEAL_CHECKS, {"uid": user_id, "pid": pipeline_id}).first()
    if row is None:
        return None
    return bool(row[0]), row[1] is not None, row[2]


def stage_by_code(session: Session, code: str) -> Stage | None:
    return session.scalars(_STAGE_BY_CODE, {"code": code}).first()


def insert_audit(session: Session, values: dict[str, Any]) -> None:
    """Write one ``audit_event`` row now, in the session's transaction (its savepoint, if any),
    without flushing the session."""
    session.connection(bind_arguments={"mapper": AuditEvent}).execute(_AUDIT_INSERT, values)
