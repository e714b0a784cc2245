"""The database for the Flask app: one engine per app, one session per request."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from crm_models.db import make_engine, make_sessionmaker

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["db_engine"] = engine
    app.extensions["db_sessionmaker"] = make_sessionmaker(engine)
    app.teardown_appcontext(_close_session)


def get_db() -> Session:
    """This request's session; views commit it after their service calls."""
    if "db" not in g:
        g.db = current_app.extensions["db_sessionmaker"]()
    return g.db


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
