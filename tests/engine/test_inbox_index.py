"""The inbox at scale: candidates kept in ``process_task_candidate`` while a task is active,
and query plans that read the partial indexes and that table, never a scan of process_task."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from engine.inbox import InboxKey, _page_query, count_query
from engine.ports import StartRequest
from engine.scheduler import TimerRunner
from engine.store import ProcessTaskCandidate, TaskStatus
from engine.tasks import inbox_query

from .support import bpmn, deal


def candidates(db, task_id):
    return sorted(db.scalars(select(ProcessTaskCandidate.user_id)
                             .where(ProcessTaskCandidate.task_id == task_id)))


@pytest.fixture()
def pool_task(engine, db):
    """An instance waiting on "Call the client", offered to role sales_manager (11, 12)."""
    d = engine.deploy(db, bpmn("pool_withdraw.bpmn"))
    inst = engine.start(db, d, StartRequest({}, started_by=3))
    [task] = engine.tasks(db, instance_id=inst.id)
    return inst, task


def test_a_pool_task_gets_one_candidate_row_per_user(db, pool_task):
    _, task = pool_task
    assert task.candidate_ids == [11, 12]
    assert candidates(db, task.id) == [11, 12]


def test_a_single_assignee_task_has_no_candidate_rows(engine, db):
    d = engine.deploy(db, bpmn("routing.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), message="deal.created"))
    [task] = engine.tasks(db, instance_id=inst.id)
    assert task.assignee_id is not None and candidates(db, task.id) == []


def test_claiming_keeps_the_candidates_and_completing_removes_them(engine, db, pool_task):
    _, task = pool_task
    engine.claim(db, task.id, 12)
    assert candidates(db, task.id) == [11, 12]  # an unclaim gives it back to them
    assert [t.id for t in engine.inbox(db, 11)] == []
    engine.unclaim(db, task.id, 12)
    assert [t.id for t in engine.inbox(db, 11)] == [task.id]
    engine.complete(db, task.id, 11, {})
    assert task.status == TaskStatus.COMPLETED and candidates(db, task.id) == []
    assert engine.inbox(db, 11) == [] and engine.inbox(db, 12) == []


def test_delegating_leaves_only_the_delegate(engine, db, pool_task):
    _, task = pool_task
    engine.delegate(db, task.id, 11, 13)
    assert candidates(db, task.id) == []
    assert engine.inbox(db, 12) == [] and [t.id for t in engine.inbox(db, 13)] == [task.id]


def test_cancelling_the_instance_removes_the_candidates(engine, db, pool_task):
    inst, task = pool_task
    engine.cancel(db, inst.id, user_id=1)
    assert task.status == TaskStatus.CANCELLED and candidates(db, task.id) == []
    assert engine.inbox(db, 11) == []


def test_a_withdrawn_task_loses_its_candidates(engine, engine_sessions, db, clock, pool_task):
    _, task = pool_task
    db.commit()
    clock.advance(3600)
    assert TimerRunner(engine, engine_sessions, worker_id="test").run_due().fired == 1
    db.commit()
    db.expire_all()
    assert task.status == TaskStatus.CANCELLED and candidates(db, task.id) == []
    assert engine.inbox(db, 12) == []


def test_the_inbox_survives_a_commit_and_sorts_by_priority_due_id(engine, db, sessions,
                                                                   pool_task):
    _, task = pool_task
    d = engine.deploy(db, bpmn("parallel.bpmn"))
    inst = engine.start(db, d, StartRequest({}, started_by=3))
    finance, legal = sorted(engine.tasks(db, instance_id=inst.id), key=lambda t: t.element_id)
    db.commit()
    with sessions() as other:
        got = [t.id for t in engine.inbox(other, 11)]
    expected = sorted([task, finance, legal], key=lambda t: (t.priority, t.due_at is None,
                                                             t.due_at, t.id))
    assert sorted(got) == sorted(t.id for t in expected)
    assert [t.id for t in engine.inbox(db, 12)] == sorted([task.id, finance.id])


# --- query plans ------------------------------------------------------------------------------

def _sql(db, stmt):
    return str(stmt.compile(dialect=db.get_bind().dialect,
                            compile_kwargs={"literal_binds": True}))


def plan(db, stmt) -> str:
    """The plan of ``stmt``; on PostgreSQL with sequential scans priced out, so that the test
    asks "can the indexes serve it", not "are they worth it on a near-empty table"."""
    sql = _sql(db, stmt)
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(db.scalars(text("EXPLAIN " + sql)))
    return "\n".join(r[-1] for r in db.execute(text("EXPLAIN QUERY PLAN " + sql)))


def assert_no_task_scan(db, got: str) -> None:
    """The plan ``got`` reads ``process_task`` only through indexes."""
    if db.get_bind().dialect.name == "postgresql":
        assert "Seq Scan" not in got, got
    else:
        assert not [line for line in got.splitlines()
                    if line.startswith("SCAN") and "process_task" in line], got


def test_the_inbox_plan_uses_the_partial_indexes_and_the_candidate_table(db, pool_task):
    got = plan(db, inbox_query(11))
    assert "ix_process_task_open_assignee" in got, got
    assert "ix_process_task_claimed" in got, got
    assert "process_task_candidate" in got, got
    assert_no_task_scan(db, got)



def page_statement(scope: str, after: InboxKey | None, limit: int):
    """The statement ``inbox_page`` runs (built once, bound parameters), with these values."""
    seek, params = "none", {"uid": 11, "lim": limit}
    if after is not None:
        seek = "nodue" if after.due_at is None else "due"
        params.update(a_pri=after.priority, a_id=after.id)
        if after.due_at is not None:
            params["a_due"] = after.due_at
    return _page_query(scope, seek).params(params)


LATER = InboxKey(2, dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC), 40)


@pytest.mark.parametrize("scope", ["all", "mine", "offered"])
@pytest.mark.parametrize("after", [None, LATER, InboxKey(2, None, 40)],
                         ids=["first page", "later page", "later page, no due time"])
def test_a_paged_inbox_plan_still_reads_only_the_indexes(db, pool_task, scope, after):
    got = plan(db, page_statement(scope, after, limit=51))
    if scope in ("all", "mine"):
        assert "ix_process_task_open_assignee" in got, got
        assert "ix_process_task_claimed" in got, got
    if scope in ("all", "offered"):
        assert "process_task_candidate" in got, got
    assert_no_task_scan(db, got)


@pytest.mark.parametrize("scope", ["all", "mine", "offered"])
def test_the_inbox_count_plan_reads_only_the_indexes(db, pool_task, scope):
    got = plan(db, count_query(11, scope=scope))
    if scope != "offered":
        assert "ix_process_task_open_assignee" in got and "ix_process_task_claimed" in got, got
    if scope != "mine":
        assert "process_task_candidate" in got, got
    assert_no_task_scan(db, got)
