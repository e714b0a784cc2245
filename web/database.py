"""The database for the Flask app: one engine per app, one session per request."""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from flask import Flask, current_app, g, request
from sqlalchemy import event
from sqlalchemy.orm import Session

from crm_models.db import lock_failure, make_engine, make_sessionmaker

log = logging.getLogger(__name__)
#: How often a request that lost a race (deadlock, serialization failure, stale SQLite
#: snapshot) runs again before it answers 503.
RETRIES = 3
_COMMITTED = "marshrut_committed"

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def init_app(app: Flask) -> None:
    cfg = app.config
    engine = make_engine(cfg["DATABASE_URL"], lock_timeout=float(cfg["LOCK_TIMEOUT"]),
                         pool_size=int(cfg["DB_POOL_SIZE"] or 0) or None)
    app.extensions["db_engine"] = engine
    app.extensions["db_sessionmaker"] = make_sessionmaker(engine)
    app.teardown_appcontext(_close_session)
    event.listen(app.extensions["db_sessionmaker"], "after_commit", _note_commit)


def _note_commit(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info[_COMMITTED] = True


def retry_units_of_work(app: Flask) -> None:
    """Wrap every view so that a request that lost a race with another transaction runs
    again as a whole (with a fresh session that takes the write lock up front), as long as
    it has committed nothing yet. Call after every blueprint is registered."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint != "static":
            app.view_functions[endpoint] = _retrying(view)


def _retrying(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(RETRIES + 1):
            try:
                return view(*args, **kwargs)
            except Exception as exc:
                session = g.get("db")
                if (attempt == RETRIES or lock_failure(exc) != "retry"
                        or (session is not None and session.info.get(_COMMITTED))):
                    raise
                log.info("%s %s lost a race (%s); running it again", request.method,
                         request.path, type(exc).__name__)
                reset_db(write=True)
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    return wrapper


#: Requests whose session writes even though their method reads: Bitrix24 REST answers
#: writes to GET too, and takes a token from its rate bucket on every call.
WRITING_PATHS = ("/rest/",)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def request_writes() -> bool:
    """Whether this request's unit of work writes (takes the write lock up front)."""
    if g.get("db_write"):  # a retry after a reader turned out to write
        return True
    return request.method not in READ_METHODS or request.path.startswith(WRITING_PATHS)


def get_db() -> Session:
    """This request's session; views commit it after their service calls."""
    if "db" not in g:
        g.db = current_app.extensions["db_sessionmaker"](write=request_writes())
    return g.db


def reset_db(*, write: bool = False) -> None:
    """Drop this request's session (rolled back) so that a retry starts afresh."""
    session = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()
    if write:
        g.db_write = True


def _close_session(exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()


@contextmanager
def db_session(app: Flask) -> Iterator[Session]:
    session = app.extensions["db_sessionmaker"]()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(app: Flask) -> None:
    """Bring the schema to the newest migration."""
    cfg = alembic_config(app.config["DATABASE_URL"])
    with app.extensions["db_engine"].begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
