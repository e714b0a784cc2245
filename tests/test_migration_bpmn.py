"""Migration 0023 adds ``process_definition.catches`` and fills it for definitions deployed
before, as deploy computes it now (so their running instances get their CRM events)."""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Connection

from engine.sandbox import Sandbox
from engine.services import ServiceRegistry
from engine.store import ProcessDefinition
from engine.validation import Compiler
from tests.test_migration_candidates import migrate

BEFORE, AFTER = "0013_invoices", "0023_bpmn"
SCHEMA = "migration_0023"
BPMN = Path(__file__).resolve().parent / "data" / "bpmn"
FILES = ("wait_record.bpmn", "events_inside.bpmn", "await_offer.bpmn", "event_gateway.bpmn",
         "routing.bpmn")


@pytest.fixture()
def conn(tmp_path) -> Iterator[Connection]:
    url = os.environ.get("MARSHRUT_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'm.sqlite3'}"
    eng = create_engine(url)
    with eng.connect() as c:
        if eng.dialect.name == "postgresql":
            c.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"))
            c.execute(text(f"SET search_path TO {SCHEMA}"))
            c.commit()
        try:
            yield c
        finally:
            c.rollback()
            if eng.dialect.name == "postgresql":
                c.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                c.commit()
    eng.dispose()


EXPECTED = {"wait_record.bpmn": ["*", "activity.created"],
            "events_inside.bpmn": ["client.replied", "deal.cancelled"],
            "await_offer.bpmn": ["offer.approved"], "event_gateway.bpmn": ["deal.lost", "deal.won"],
            "routing.bpmn": None}


def test_deploy_computes_the_same_catches():
    compiler = Compiler(ServiceRegistry(), Sandbox(), None)
    for name in ("wait_record.bpmn", "events_inside.bpmn", "await_offer.bpmn"):
        compiled, errors = compiler.compile((BPMN / name).read_text("utf-8"))
        assert compiled is not None, errors
        assert compiled.catches == EXPECTED[name]


def test_catches_are_backfilled_for_definitions_deployed_before(conn):
    migrate(conn, BEFORE)
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for i, name in enumerate(EXPECTED, 1):
        conn.execute(text(
            "INSERT INTO process_definition (id, key, version, name, bpmn_xml, dmn_xml, specs, "
            "triggers, manual_start, variables, priority, schedules, active, deployed_at) "
            "VALUES (:id, :key, 1, 'P', :xml, '[]', '{}', '[]', :t, '{}', 100, '[]', :t, :now)"),
            {"id": i, "key": f"p{i}", "xml": (BPMN / name).read_text("utf-8"), "t": True,
             "now": now})
    conn.commit()
    migrate(conn, AFTER)
    table = ProcessDefinition.__table__
    got = dict(conn.execute(select(table.c.id, table.c.catches).order_by(table.c.id)).all())
    assert got == {i: catches for i, catches in enumerate(EXPECTED.values(), 1)}
    migrate(conn, BEFORE, down=True)
    assert conn.execute(text("SELECT count(*) FROM process_definition")).scalar() == 5
