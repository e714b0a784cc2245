"""The statements behind every CRM write, in as few round trips as the database allows.

A write locks its record, checks the users and records it points at, finds a deal's stage and
writes its audit row. Each statement here is built once and run with bound parameters
(building and cache-keying an ORM statement costs more than running it on SQLite); checks that
need no ORM object read plain columns through Core (the session autoflushes first, as for an
ORM query, so they see its pending changes).

The record rows and the outbox events are written with Core too, not by a flush (whose unit
of work costs several times the statement): ``insert_record`` and ``update_record`` keep the
session's object of the record as a flush would leave it (persistent, its written values
loaded, nothing pending), and a rollback of the transaction or savepoint that wrote it undoes
that as it undoes a flush (see ``_undo_core_writes``). ``insert_outbox`` tells the session's
``OUTBOX_INSERTED`` listeners of each event.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Insert, Select, Update, bindparam, func, inspect, select
from sqlalchemy import delete as sa_delete
from sqlalchemy import event as sa_event
from sqlalchemy import insert as sa_insert
from sqlalchemy import update as sa_update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import MANYTOONE, Session, make_transient, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from ..activity import AuditEvent, OutboxEvent
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
    #: A new row from the columns given (Core adds the columns' defaults).
    insert: Insert
    #: The columns given, of the row ``rid``.
    update: Update
    #: Records with contacts (deals): ``lock_returning`` and ``lock`` that also return the
    #: row's contact ids, as one text (SQLite) or array (PostgreSQL); None for the others.
    lock_returning_contacts: Update | None
    lock_contacts: Select[Any] | None


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
    lock = select(*columns).where(table.c.id == rid).with_for_update()
    lock_returning_contacts = lock_contacts = None
    if "contacts" in mapper.relationships:
        of_row = deal_contact.c.deal_id == table.c.id
        lock_returning_contacts = lock_returning.returning(
            select(func.group_concat(deal_contact.c.contact_id)).where(of_row)
            .correlate(table).scalar_subquery())
        lock_contacts = lock.add_columns(
            select(func.array_agg(deal_contact.c.contact_id)).where(of_row)
            .correlate(table).scalar_subquery())
    return _RecordSql(
        keys=keys,
        read=select(model).where(model.id == rid),
        load_locked=select(model).where(model.id == rid).with_for_update()
        .execution_options(populate_existing=True),
        lock_returning=lock_returning,
        load_lock_returning=select(model).from_statement(lock_returning)
        .execution_options(populate_existing=True),
        lock=lock,
        exists=select(table.c.id).where(table.c.id == bindparam("id")),
        existing=select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True))),
        references=references,
        insert=sa_insert(table),
        update=sa_update(table).where(table.c.id == rid),
        lock_returning_contacts=lock_returning_contacts,
        lock_contacts=lock_contacts,
    )


#: Built on first use, when the mappers are configured (every model module is imported).
_SQL: dict[type[Any], _RecordSql] = {}


def _sql(model: Any) -> _RecordSql:
    sql = _SQL.get(model)
    if sql is None:
        sql = _SQL[model] = _record_sql(model)
    return sql


_AUDIT_INSERT = AuditEvent.__table__.insert()
_OUTBOX_INSERT = OutboxEvent.__table__.insert()
_CONTACT_LINK = deal_contact.insert()
_CONTACT_UNLINK = sa_delete(deal_contact).where(
    deal_contact.c.deal_id == bindparam("rid"),
    deal_contact.c.contact_id.in_(bindparam("ids", expanding=True)))
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
    loaded again: when the loaded columns (and, for a deal, its loaded contacts, read by the
    same statement) match, it is what a reload would give, and it keeps the related objects
    it has loaded. Otherwise it is refreshed from the database, pending unflushed changes
    included (as ``populate_existing`` does).
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
    loaded = held.__dict__
    contacts = "contacts" in loaded and sql.lock_contacts is not None
    if sqlite:
        stmt = sql.lock_returning_contacts if contacts else sql.lock_returning
        row = _sqlite_write(lambda: _core(session, model).execute(stmt, params).first())
    else:
        row = _core(session, model).execute(sql.lock_contacts if contacts else sql.lock,
                                            params).first()
    if row is None:
        return None
    # (not strict: the row may end with the contact ids)
    if any(loaded.get(key, _MISSING) != value
           for key, value in zip(sql.keys, row, strict=False)):
        # Changed since this session read it: load it as the lock sees it (the lock is held).
        return session.scalars(sql.load_locked, params).first()
    if contacts and [c.id for c in held.contacts] != _contact_ids(row[-1]):
        session.expire(held, ["contacts"])
    expire_stale_references(session, held)
    return held


def _contact_ids(value: Any) -> list[int]:
    """The contact ids of ``lock_contacts``/``lock_returning_contacts``, in id order."""
    if not value:
        return []
    if isinstance(value, str):  # SQLite's group_concat
        return sorted(int(v) for v in value.split(","))
    return sorted(value)


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


#: ``session.info`` key: callables ``(session, row)`` that ``insert_outbox`` calls with each
#: outbox event it has just inserted (a dict of ``outbox_event`` columns, ``id`` included),
#: in the same transaction: the events are written with Core, never flushed, so this is how
#: a session-level observer (the dispatcher, the notifier, webhook delivery) hears of them.
#: Set on a sessionmaker's ``info`` (``add_outbox_listener``), each session inherits them.
OUTBOX_INSERTED = "marshrut.outbox_inserted"


def add_outbox_listener(factory: Any, listener: Callable[[Session, dict[str, Any]], None]
                        ) -> None:
    """Have every session ``factory`` (a sessionmaker) makes from now on call ``listener``
    for each outbox event it inserts (once, however often this is called)."""
    info = dict(factory.kw.get("info") or {})
    listeners = list(info.get(OUTBOX_INSERTED, ()))
    if listener not in listeners:
        info[OUTBOX_INSERTED] = [*listeners, listener]
        factory.configure(info=info)


def insert_outbox(session: Session, values: dict[str, Any]) -> int:
    """Write one ``outbox_event`` row now, in the session's transaction (its savepoint, if
    any), tell the ``OUTBOX_INSERTED`` listeners, and return its id."""
    result = _core(session, OutboxEvent).execute(_OUTBOX_INSERT, values)
    row = {"id": result.inserted_primary_key[0], **values}
    for listener in session.info.get(OUTBOX_INSERTED, ()):
        listener(session, row)
    return row["id"]


# --- record rows written with Core ---------------------------------------------------------

def insert_record(session: Session, record: Any) -> None:
    """Write the new ``record`` (transient, its fields set) with one Core INSERT and make it
    persistent in ``session`` as a flush would: its id and the columns' defaults loaded,
    nothing pending, the related objects it was given (a deal's stage and contacts) kept as
    loaded; a deal's contacts are linked. Pending changes of the session are flushed first,
    even under ``no_autoflush``, as the flush that wrote a new record did (the row may refer
    to them, and a caller may count on them being written)."""
    model = type(record)
    sql = _sql(model)
    session.flush()
    loaded = record.__dict__
    result = _core(session, model).execute(
        sql.insert, {key: loaded[key] for key in sql.keys if key in loaded})
    written = result.last_inserted_params()
    # The id, the columns' defaults and NULLs, straight into the transient object's dict:
    # ``make_transient_to_detached`` then takes every value it holds as loaded.
    loaded["id"] = result.inserted_primary_key[0]
    for key in sql.keys:
        if key not in loaded:
            loaded[key] = written.get(key)
    make_transient_to_detached(record)
    session.add(record)
    _note_written(session, record, inserted=True)
    contacts = loaded.get("contacts") if sql.lock_contacts is not None else None
    if contacts:
        _core(session, model).execute(
            _CONTACT_LINK, [{"deal_id": record.id, "contact_id": c.id} for c in contacts])


def set_loaded(record: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Set ``values`` (attribute → value: columns and many-to-one or collection
    relationships) on the persistent ``record`` as loaded values, not as changes to flush;
    returns the columns among them whose value differs from the one it held (the row's
    changes for ``update_record``)."""
    keys = _sql(type(record)).keys
    loaded = record.__dict__
    changed = {k: v for k, v in values.items()
               if k in keys and loaded.get(k, _MISSING) != v}
    for key, value in values.items():
        set_committed_value(record, key, value)
    return changed


def update_record(session: Session, record: Any, columns: dict[str, Any], *,
                  contacts: tuple[Sequence[int], Sequence[int]] | None = None) -> None:
    """Write ``columns`` (as ``set_loaded`` has just set them on ``record``) to its row with
    one Core UPDATE; ``contacts``: (old ids, new ids) of a deal's contacts, whose links are
    changed to match. A rollback of this transaction (or savepoint) expires the record."""
    model = type(record)
    _note_written(session, record, inserted=False)
    if columns:
        _core(session, model).execute(_sql(model).update, {"rid": record.id, **columns})
    if contacts is not None:
        old, new = contacts
        gone = sorted(set(old) - set(new))
        if gone:
            _core(session, model).execute(_CONTACT_UNLINK, {"rid": record.id, "ids": gone})
        added = [c for c in new if c not in set(old)]
        if added:
            _core(session, model).execute(
                _CONTACT_LINK, [{"deal_id": record.id, "contact_id": c} for c in added])


#: ``session.info`` key: (weak reference to the root transaction, [(weak references to the
#: transaction that wrote and to each of its parents, record, inserted?)]).
_CORE_WRITTEN = "marshrut_core_written"
#: Session classes whose ``after_rollback`` calls ``_undo_core_writes``.
_UNDOING: set[type[Any]] = set()


def _note_written(session: Session, record: Any, *, inserted: bool) -> None:
    root = session.get_transaction()
    if root is None:  # cannot be: the write has just begun one
        return
    held = session.info.get(_CORE_WRITTEN)
    if held is None or held[0]() is not root:
        # Weak references: a transaction refers to its session (no cycle through ``info``).
        held = session.info[_CORE_WRITTEN] = (weakref.ref(root), [])
        kind = type(session)
        if kind not in _UNDOING:
            if not sa_event.contains(kind, "after_rollback", _undo_core_writes):
                sa_event.listen(kind, "after_rollback", _undo_core_writes)
            _UNDOING.add(kind)
    chain = []
    transaction = session.get_nested_transaction() or root
    while transaction is not None:
        chain.append(weakref.ref(transaction))
        transaction = transaction.parent
    held[1].append((tuple(chain), record, inserted))


def _undo_core_writes(session: Session) -> None:
    """``after_rollback`` (of the transaction or of a savepoint, before the session restores
    its objects): what ``insert_record`` and ``update_record`` wrote in it is undone in the
    session as a flush's would be — a record inserted there is expunged (transient again,
    keeping its values), one updated there is expired (it reloads when next read)."""
    held = session.info.get(_CORE_WRITTEN)
    if not held or not held[1]:
        return
    # The transaction rolled back: the innermost savepoint, else the transaction itself.
    ended = session.get_nested_transaction() or session.get_transaction()
    kept = []
    for chain, record, inserted in held[1]:
        if not any(ref() is ended for ref in chain):
            kept.append((chain, record, inserted))
        elif inserted:
            if record in session:
                make_transient(record)
        elif record in session:
            session.expire(record)
    held[1][:] = kept
