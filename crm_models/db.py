"""Declarative base, column types and engine/session construction."""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, MetaData, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

#: The largest row id: id columns are INTEGER, 32-bit on PostgreSQL, where comparing one with a
#: bigger number fails ("integer out of range") instead of finding nothing. Defined with the
#: strict number parser, which bounds ids read from user input by it.
from strictnum import MAX_ROW_ID  # noqa: F401  (re-exported)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores naive UTC, returns aware UTC, on every backend alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


CENT = Decimal("0.01")


class Money(TypeDecorator[Decimal]):
    """A money amount: Decimal in Python, integer kopecks/cents in the database.

    Integer storage keeps sorting and comparisons exact on SQLite, which has no decimal type.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Any) -> int | None:
        if value is None:
            return None
        return int((Decimal(value) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(value) / 100).quantize(CENT)


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


#: Seconds a unit of work may wait for a lock (SQLite's write lock, a PostgreSQL row lock, a
#: pooled connection) before it gives up with :class:`Busy` — answered 503 + Retry-After.
DEFAULT_LOCK_TIMEOUT = 10.0
_BEGIN_OPTION = "marshrut_sqlite_begin"


def make_engine(url: str, *, echo: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                pool_size: int | None = None) -> Engine:
    """An engine for ``url``.

    SQLite gets WAL, foreign keys, a busy timeout of ``lock_timeout`` and transactions that
    begin as the session asks (see :class:`AppSession`): ``BEGIN`` (deferred) for readers,
    ``BEGIN IMMEDIATE`` for units of work that write. A deferred transaction that reads and
    then writes fails at once with SQLITE_BUSY_SNAPSHOT when another writer committed in
    between (no busy wait helps there); taking the write lock up front makes writers queue
    instead. PostgreSQL gets ``lock_timeout`` on every connection and a pool of ``pool_size``
    connections (plus as many overflow) whose checkout waits at most ``lock_timeout``.
    """
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": lock_timeout, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_timeout"] = lock_timeout
        if pool_size:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
        if url.startswith("postgresql"):
            kwargs["connect_args"] = {
                "options": f"-c lock_timeout={int(lock_timeout * 1000)}"}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        busy_ms = int(lock_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy own transactions (pysqlite's implicit BEGIN is off).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.close()
            # SQLite's built-in lower() folds ASCII only; list filters must match «Вектор»
            # by "вектор" as they do on PostgreSQL.
            dbapi_conn.create_function("lower", 1, _unicode_lower, deterministic=True)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get(_BEGIN_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "immediate" else "BEGIN")
    engine.marshrut_writer = engine.execution_options(  # type: ignore[attr-defined]
        **{_BEGIN_OPTION: "immediate"})
    return engine


class AppSession(Session):
    """The app's sessions. ``write=True`` marks a unit of work that writes: on SQLite each of
    its transactions takes the write lock at BEGIN (waiting up to the lock timeout for the
    writer before it), so it can never fail half-way because another writer got in first.
    Readers (``write=False``, the default) never block or wait for writers (WAL)."""

    def __init__(self, bind: Any = None, *, write: bool = False, **kw: Any) -> None:
        if write and bind is not None:
            bind = getattr(bind, "marshrut_writer", bind)
        super().__init__(bind=bind, **kw)
        self.writes = write


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, class_=AppSession, expire_on_commit=False)


# --- lock failures ---------------------------------------------------------------------------

#: SQLite extended result codes (``sqlite3.Error.sqlite_errorcode``).
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_SQLITE_BUSY_SNAPSHOT = 5 | (2 << 8)
#: PostgreSQL SQLSTATEs: a whole unit of work may simply run again.
_PG_RETRY = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_PG_BUSY = {"55P03", "57014"}  # lock_not_available (lock_timeout), query_canceled


class Busy(Exception):
    """The database stayed busy for the whole lock budget: nothing was written; try again
    later (HTTP: 503 with Retry-After)."""

    retry_after = 2


def lock_failure(exc: BaseException) -> str | None:
    """Classify a database error: ``"retry"`` — the unit of work lost a race and may run
    again at once (PostgreSQL serialization failure or deadlock, SQLite's stale snapshot);
    ``"busy"`` — a lock or a pooled connection was not had within the budget; None — some
    other error."""
    if isinstance(exc, Busy | sa_exc.TimeoutError):
        return "busy"
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        if code == _SQLITE_BUSY_SNAPSHOT:
            return "retry"
        return "busy" if code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED) else None
    state = getattr(orig, "sqlstate", None)
    if state in _PG_RETRY:
        return "retry"
    if state in _PG_BUSY:
        return "busy"
    return None
