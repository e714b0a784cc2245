"""Shared fixtures. The database is migrated once per run and emptied before every test.

``MARSHRUT_TEST_DATABASE_URL`` selects PostgreSQL; unset, a temporary SQLite file is used.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import argon2
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

import crm_models.services.org as _org_services
from app import create_app
from crm_models.db import Base
from crm_models.setup import ensure_reference_data
from web.database import migrate

from .factories import Org, make_org

# Production-strength argon2 costs ~50 ms per hash; tests create users by the hundred.
# The parameters travel inside each hash, so verification is unaffected.
_org_services._hasher = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _compile_translations() -> None:
    """Compile the .po catalogs when their .mo is missing or older (``make`` does the same),
    so that a bare ``pytest`` in a fresh checkout sees the translated UI."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[1] / "web" / "translations"
    for po in root.glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as f:
                catalog = read_po(f)
            with mo.open("wb") as f:
                write_mo(f, catalog)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets its own PostgreSQL database (``<name>_gw0`` …),
    created on first use; the environment variable is rewritten so that every test that
    reads it (subprocess workers, servers) talks to the worker's database."""
    if not hasattr(config, "workerinput"):  # the controller compiles before workers start
        _compile_translations()
    worker = getattr(config, "workerinput", {}).get("workerid")
    url = os.environ.get("MARSHRUT_TEST_DATABASE_URL")
    if not worker or not url:
        return
    from sqlalchemy import create_engine

    base, _, name = url.rpartition("/")
    own = f"{name}_{worker}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                        {"n": own}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{own}"'))
    admin.dispose()
    os.environ["MARSHRUT_TEST_DATABASE_URL"] = f"{base}/{own}"


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("MARSHRUT_TEST_DATABASE_URL")
    return url or f"sqlite:///{tmp_root / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def app_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("marshrut")
    return {
        "TESTING": True,
        "DATABASE_URL": _database_url(root),
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": True,
        "RUN_SCHEDULER": False,
    }


@pytest.fixture(scope="session")
def _migrated_app(app_config: dict[str, Any]) -> Any:
    app = create_app(app_config)
    engine = app.extensions["db_engine"]
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate(app)
    yield app
    engine.dispose()


def _all_tables(app: Any) -> list[str]:
    names = [t.name for t in Base.metadata.sorted_tables]
    try:
        from engine.store import EngineBase

        names += [t.name for t in EngineBase.metadata.sorted_tables]
    except ImportError:
        pass
    return names


def empty_database(app: Any) -> None:
    engine = app.extensions["db_engine"]
    tables = _all_tables(app)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                              + " RESTART IDENTITY CASCADE"))
        else:
            conn.execute(text("PRAGMA defer_foreign_keys=ON"))
            for t in reversed(tables):
                conn.execute(text(f'DELETE FROM "{t}"'))
            conn.execute(text("DELETE FROM sqlite_sequence")) if conn.execute(text(
                "SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first() else None


@pytest.fixture()
def app(_migrated_app: Any) -> Iterator[Any]:
    empty_database(_migrated_app)
    with _migrated_app.extensions["db_sessionmaker"]() as s:
        ensure_reference_data(s)
        s.commit()
    yield _migrated_app


@pytest.fixture()
def db(app: Any) -> Iterator[Session]:
    """A session outside any request, as service functions get it."""
    session = app.extensions["db_sessionmaker"]()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture()
def org(app: Any, db: Session) -> Org:
    """The standard org chart: Sales (head) ⊃ Corporate; managers; an outsider; admin; observer."""
    o = make_org(db)
    db.commit()
    return o


@pytest.fixture()
def client(app: Any) -> Any:
    return app.test_client()


class AuthActions:
    """Log in through the real form (with its CSRF token) or get an API token."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def csrf_token(self, path: str = "/login") -> str:
        import re

        html = self.client.get(path).get_data(as_text=True)
        m = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
            r'name="csrf_token"[^>]*value="([^"]+)"', html)
        assert m, f"no CSRF token on {path}"
        return m.group(1)

    def login(self, email: str, password: str = "demo") -> Any:
        token = self.csrf_token()
        return self.client.post("/login", data={"email": email, "password": password,
                                                "csrf_token": token})

    def logout(self) -> Any:
        return self.client.post("/logout", data={"csrf_token": self.csrf_token("/")})


@pytest.fixture()
def auth(client: Any) -> AuthActions:
    return AuthActions(client)
