"""A request that cannot get its lock within the budget answers 503 with Retry-After (Bitrix
REST: QUERY_LIMIT_EXCEEDED) and writes nothing — never a 500."""
from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import func, select

from app import create_app
from crm_models.entities import Deal
from crm_models.services.org import create_token

from ..bitrix.conftest import make_hook


@pytest.fixture()
def impatient(app, app_config):
    other = create_app(dict(app_config, LOCK_TIMEOUT=0.3))
    yield other
    other.extensions["db_engine"].dispose()


@contextlib.contextmanager
def deal_table_locked(app):
    """Another writer holding what a deal insert needs, longer than the budget."""
    conn = app.extensions["db_engine"].marshrut_writer.connect()
    try:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: the one write lock
        else:
            conn.exec_driver_sql("LOCK TABLE deal IN EXCLUSIVE MODE")
        yield
    finally:
        conn.rollback()
        conn.close()


def test_busy_database_answers_503_with_retry_after_and_writes_nothing(app, db, org,
                                                                        impatient):
    token = create_token(db, org.m1, "busy")
    hook = make_hook(db, org.m1)
    db.commit()
    before = db.scalar(select(func.count()).select_from(Deal))
    db.rollback()
    client = impatient.test_client()
    with deal_table_locked(app):
        r = client.post("/api/v1/deals", json={"title": "Занято", "amount": 5},
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503, r.get_data(as_text=True)
        assert r.headers["Retry-After"] and r.get_json()["error"]["code"] == "busy"
        b = client.post(hook.path + "crm.deal.add.json", json={"fields": {"TITLE": "Занято"}})
        assert b.status_code == 503, b.get_data(as_text=True)
        assert b.headers["Retry-After"] and b.get_json()["error"] == "QUERY_LIMIT_EXCEEDED"
    assert db.scalar(select(func.count()).select_from(Deal)) == before
    # and once the lock is gone the same request goes through
    r = client.post("/api/v1/deals", json={"title": "Свободно", "amount": 5},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201
