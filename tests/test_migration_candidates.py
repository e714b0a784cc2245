"""Migration 0011 fills ``process_task_candidate`` from the tasks already in the database
and can be undone."""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import Connection

from engine.store import ProcessDefinition, ProcessInstance, ProcessTask, ProcessTaskCandidate
from web.database import alembic_config

BEFORE, AFTER = "0009_sessions", "0011_list_indexes"
SCHEMA = "migration_0011"


@pytest.fixture()
def conn(tmp_path) -> Iterator[Connection]:
    """A connection to an empty database (PostgreSQL: a schema of its own in the test
    database), for migrations run step by step."""
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


def migrate(conn: Connection, revision: str, *, down: bool = False) -> None:
    cfg = alembic_config(str(conn.engine.url))
    cfg.attributes["connection"] = conn
    (command.downgrade if down else command.upgrade)(cfg, revision)
    conn.commit()


def test_the_candidates_of_active_tasks_are_backfilled(conn):
    migrate(conn, BEFORE)
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    conn.execute(insert(ProcessDefinition.__table__).values(
        id=1, key="p", version=1, name="P", bpmn_xml="", dmn_xml=[], specs={}, triggers=[],
        manual_start=True, variables={}, priority=100, schedules=[], active=True,
        deployed_at=now))
    conn.execute(insert(ProcessInstance.__table__).values(
        id=1, definition_id=1, status="waiting", serializer_version="1", version=1,
        waiting=[], started_at=now, incident_attempts=0))
    tasks = {1: ("open", [11, 12]), 2: ("claimed", [12, 13]), 3: ("completed", [11, 12]),
             4: ("cancelled", [14]), 5: ("open", []), 6: ("open", [15, 15])}
    conn.execute(insert(ProcessTask.__table__), [
        {"id": i, "instance_id": 1, "spiff_task_id": f"t{i}", "element_id": "T", "name": "T",
         "instructions": "", "form": [], "assignee_id": None if cands else 11,
         "candidate_ids": cands, "assignment_note": "", "status": status, "priority": 2,
         "created_at": now, "definition_key": "p"}
        for i, (status, cands) in tasks.items()])
    conn.commit()
    migrate(conn, AFTER)
    got = sorted(conn.execute(select(ProcessTaskCandidate.task_id,
                                     ProcessTaskCandidate.user_id)).all())
    assert got == [(1, 11), (1, 12), (2, 12), (2, 13), (6, 15)]
    migrate(conn, BEFORE, down=True)  # and back: the table goes, the tasks stay
    assert conn.execute(select(ProcessTask.id).order_by(ProcessTask.id)).scalars().all() == [1, 2, 3, 4, 5, 6]
