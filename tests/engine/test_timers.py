"""Timers in running instances, on an injected clock: intermediate waits, boundary timers
(interrupting and not), event-based gateways, cancellation, business hours."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from sqlalchemy import select

from engine.ports import StartRequest
from engine.scheduler import TimerRunner
from engine.store import Status, TaskStatus, Timer, TimerKind, TimerStatus

from .support import bpmn

MSK = zoneinfo.ZoneInfo("Europe/Moscow")


def at_msk(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=MSK).astimezone(dt.UTC)


@pytest.fixture()
def runner(engine, engine_sessions):
    return TimerRunner(engine, engine_sessions, worker_id="test")


def start(engine, db, name, data=None):
    d = engine.deploy(db, bpmn(name))
    inst = engine.start(db, d, StartRequest(data or {}))
    db.commit()
    return inst


def timers_of(db, instance_id, status=None):
    q = select(Timer).where(Timer.instance_id == instance_id).order_by(Timer.id)
    if status:
        q = q.where(Timer.status == status)
    db.commit()  # a new transaction: see what other sessions committed
    db.expire_all()
    return list(db.scalars(q))


def fire_due(runner, db):
    """Run the scheduler's pass; end the test session's transaction so that it sees the
    runner's commits (SQLite keeps a read transaction on its snapshot)."""
    db.commit()
    report = runner.run_due()
    db.commit()
    db.expire_all()  # the app's sessions keep objects across commits
    return report


def test_intermediate_timer_waits_three_days_then_continues(engine, db, clock, runner):
    inst = start(engine, db, "timer_wait.bpmn")
    assert inst.status == Status.WAITING
    [row] = timers_of(db, inst.id)
    assert (row.kind, row.element_id, row.status) == (TimerKind.CATCH, "Wait_3d",
                                                      TimerStatus.PENDING)
    assert row.due_at == clock.now() + dt.timedelta(days=3)
    [waiting] = engine.waiting_events(db, inst.id)
    assert waiting == {"event": "Three days later", "type": "TimerEventDefinition",
                       "element": "Wait_3d", "value": row.due_at.isoformat()}

    clock.advance(3 * 86400 - 1)
    assert fire_due(runner, db).fired == 0
    assert engine.instance(db, inst.id).status == Status.WAITING

    clock.advance(1)
    assert fire_due(runner, db).fired == 1
    inst = engine.instance(db, inst.id)
    assert inst.status == Status.COMPLETED and inst.waiting == []
    assert engine.instance_data(db, inst.id)["waited"] is True
    [row] = timers_of(db, inst.id)
    assert (row.status, row.fired_at, row.fired_by) == (TimerStatus.FIRED, clock.now(), "test")
    events = [(h.event, h.element_id) for h in engine.history(db, inst.id)]
    assert ("timer_fired", "Wait_3d") in events and events[-1] == ("finished", None)
    assert fire_due(runner, db).claimed == 0  # fired once, never again


def test_non_interrupting_boundary_fires_and_the_task_stays(engine, db, clock, runner):
    # Monday 12:00 in Moscow: the reminder is due at 13:00, the escalation (2 working
    # hours) at 14:00.
    clock.current = at_msk(2026, 3, 2, 12, 0)
    inst = start(engine, db, "timer_boundary.bpmn")
    [task] = engine.tasks(db, instance_id=inst.id)
    due = {t.element_id: t.due_at for t in timers_of(db, inst.id)}
    assert due == {"Remind": at_msk(2026, 3, 2, 13, 0), "Escalate": at_msk(2026, 3, 2, 14, 0)}
    assert {t.kind for t in timers_of(db, inst.id)} == {TimerKind.BOUNDARY}

    clock.current = at_msk(2026, 3, 2, 13, 0)
    assert fire_due(runner, db).fired == 1
    [same] = engine.tasks(db, instance_id=inst.id)
    assert same.id == task.id and same.status == TaskStatus.OPEN  # not interrupted
    assert engine.instance(db, inst.id).status == Status.WAITING
    assert [t.element_id for t in timers_of(db, inst.id, TimerStatus.PENDING)] == ["Escalate"]
    history = [(h.event, h.element_id) for h in engine.history(db, inst.id)]
    assert ("left", "Note_reminder") in history

    engine.complete(db, task.id, 11, {"ok": True})
    db.commit()
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    [escalate] = timers_of(db, inst.id, TimerStatus.CANCELLED)
    assert escalate.element_id == "Escalate"
    clock.current = at_msk(2026, 3, 2, 15, 0)
    assert fire_due(runner, db).claimed == 0


def test_interrupting_boundary_withdraws_the_task_and_escalates(engine, db, clock, runner):
    clock.current = at_msk(2026, 3, 6, 17, 0)  # Friday 17:00: 2 working hours → Monday 10:00
    inst = start(engine, db, "timer_boundary.bpmn")
    [task] = engine.tasks(db, instance_id=inst.id)
    escalate = next(t for t in timers_of(db, inst.id) if t.element_id == "Escalate")
    assert escalate.due_at == at_msk(2026, 3, 9, 10, 0)

    clock.current = at_msk(2026, 3, 9, 10, 0)  # both due now: they fire in due order
    report = fire_due(runner, db)
    assert (report.claimed, report.fired, report.other) == (2, 1, 1)
    rows = {t.element_id: t for t in timers_of(db, inst.id)}
    assert {k: r.status for k, r in rows.items()} == {"Remind": TimerStatus.FIRED,
                                                     "Escalate": TimerStatus.FIRED}
    assert rows["Escalate"].note == "fired with an earlier timer"
    old = engine.task(db, task.id)
    assert old.status == TaskStatus.CANCELLED
    [new] = engine.tasks(db, instance_id=inst.id)
    assert (new.element_id, new.assignee_id) == ("Approve_head", 10)
    engine.complete(db, new.id, 10, {"ok": False})
    db.commit()
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    assert engine.instance_data(db, inst.id)["reminded"] is True


def test_interrupting_boundary_alone(engine, db, clock, runner):
    """Only the escalation is due: it withdraws the task; the reminder is cancelled."""
    clock.current = at_msk(2026, 3, 2, 12, 0)
    inst = start(engine, db, "timer_boundary.bpmn")
    rows = {t.element_id: t for t in timers_of(db, inst.id)}
    with db.begin_nested():
        rows["Remind"].due_at = at_msk(2026, 3, 3, 12, 0)  # as if the reminder were later
    db.commit()
    clock.current = at_msk(2026, 3, 2, 14, 0)
    assert fire_due(runner, db).fired == 1
    rows = {t.element_id: t.status for t in timers_of(db, inst.id)}
    assert rows == {"Remind": TimerStatus.CANCELLED, "Escalate": TimerStatus.FIRED}
    assert [t.element_id for t in engine.tasks(db, instance_id=inst.id)] == ["Approve_head"]
    assert "reminded" not in engine.instance_data(db, inst.id)


def test_completing_the_task_first_cancels_its_timers(engine, db, clock, runner):
    inst = start(engine, db, "timer_boundary.bpmn")
    [task] = engine.tasks(db, instance_id=inst.id)
    clock.advance(600)
    engine.complete(db, task.id, 11, {"ok": True})
    db.commit()
    assert {t.status for t in timers_of(db, inst.id)} == {TimerStatus.CANCELLED}
    clock.advance(7 * 86400)
    assert fire_due(runner, db).claimed == 0
    assert engine.instance(db, inst.id).status == Status.COMPLETED


def test_cancelling_the_instance_cancels_its_timers(engine, db, clock, runner):
    inst = start(engine, db, "timer_boundary.bpmn")
    engine.cancel(db, inst.id, user_id=1, reason="no longer needed")
    db.commit()
    assert {t.status for t in timers_of(db, inst.id)} == {TimerStatus.CANCELLED}
    clock.advance(86400)
    assert fire_due(runner, db).claimed == 0


def test_a_stale_row_is_cancelled_not_fired(engine, db, clock, runner):
    """A row whose event no longer waits (state changed behind its back) is closed."""
    inst = start(engine, db, "timer_wait.bpmn")
    [row] = timers_of(db, inst.id)
    row.spiff_task_id = "00000000-0000-0000-0000-000000000000"
    db.commit()
    clock.advance(3 * 86400)
    report = fire_due(runner, db)
    assert (report.fired, report.other) == (0, 1)
    [row] = timers_of(db, inst.id)
    assert (row.status, row.note) == (TimerStatus.CANCELLED, "no longer waited for")
    assert engine.instance(db, inst.id).status == Status.WAITING


def test_event_gateway_message_first_cancels_the_deadline(engine, db, clock, runner):
    clock.current = at_msk(2026, 3, 2, 9, 0)
    inst = start(engine, db, "timer_gateway.bpmn")
    [row] = timers_of(db, inst.id)
    assert (row.element_id, row.due_at) == ("Timeout", at_msk(2026, 3, 10, 18, 0))
    engine.send_message(db, inst.id, "deal.won")
    db.commit()
    assert engine.instance_data(db, inst.id)["outcome"] == "won"
    assert timers_of(db, inst.id)[0].status == TimerStatus.CANCELLED


def test_event_gateway_deadline_first_drops_the_message(engine, db, clock, runner):
    clock.current = at_msk(2026, 3, 2, 9, 0)
    inst = start(engine, db, "timer_gateway.bpmn")
    clock.current = at_msk(2026, 3, 10, 18, 0)
    assert fire_due(runner, db).fired == 1
    inst = engine.instance(db, inst.id)
    assert inst.status == Status.COMPLETED
    assert engine.instance_data(db, inst.id)["outcome"] == "late"


def test_a_date_already_past_fires_at_once(engine, db, clock, runner):
    clock.current = at_msk(2026, 3, 11, 9, 0)  # after the gateway's 2026-03-10 18:00
    inst = start(engine, db, "timer_gateway.bpmn")
    assert inst.status == Status.COMPLETED
    assert engine.instance_data(db, inst.id)["outcome"] == "late"
    assert timers_of(db, inst.id) == []
    assert ("timer_fired", "Timeout") in [(h.event, h.element_id)
                                          for h in engine.history(db, inst.id)]


def test_save_and_restore_keeps_the_due_time(engine, db, clock, runner):
    """The waiting state survives a JSON round trip (the timer definition's converter)."""
    import json

    inst = start(engine, db, "timer_boundary.bpmn")
    inst.state = json.loads(json.dumps(inst.state))
    db.commit()
    run = engine._load(db, inst)
    values = {e["element"]: e["value"] for e in run.waiting_events()}
    due = {t.element_id: t.due_at.isoformat() for t in timers_of(db, inst.id)}
    assert values == due


def test_completing_while_the_scheduler_looks_leaves_nothing_to_fire(engine, db, clock,
                                                                     runner, sessions):
    """The completion holds the instance (and its timer rows) uncommitted while the scheduler
    claims: PostgreSQL skips the locked rows, SQLite waits for the writer; either way the
    escalation is cancelled, not fired."""
    import threading

    inst = start(engine, db, "timer_boundary.bpmn")
    [task] = engine.tasks(db, instance_id=inst.id)
    clock.advance(3 * 3600 * 24)  # both timers are due
    user = sessions()
    engine.complete(user, task.id, 11, {"ok": True})
    reports = []
    scheduler = threading.Thread(target=lambda: reports.append(runner.run_due()))
    scheduler.start()
    scheduler.join(0.3)
    user.commit()
    scheduler.join(30)
    assert reports and reports[0].fired == 0
    assert {t.status for t in timers_of(db, inst.id)} == {TimerStatus.CANCELLED}
    assert engine.instance(db, inst.id).status == Status.COMPLETED


def test_a_timer_firing_while_the_user_completes_wins_and_the_user_is_told(
        engine, db, clock, runner, sessions, monkeypatch):
    """The escalation fires first (holding the instance); the completion that arrives
    meanwhile fails cleanly (409), and nothing is done twice."""
    import threading

    from engine.errors import Conflict, TaskNotReady

    clock.current = at_msk(2026, 3, 2, 12, 0)
    inst = start(engine, db, "timer_boundary.bpmn")
    [task] = engine.tasks(db, instance_id=inst.id)
    rows = {t.element_id: t for t in timers_of(db, inst.id)}
    rows["Remind"].due_at = at_msk(2026, 3, 3, 12, 0)  # only the escalation is due
    db.commit()
    clock.current = at_msk(2026, 3, 2, 14, 0)
    service = engine.timer_service
    original = service._fire_instance
    inside, proceed = threading.Event(), threading.Event()

    def slow_fire(*args, **kw):
        result = original(*args, **kw)
        inside.set()
        proceed.wait(10)  # the fire's transaction is still open, its locks held
        return result

    monkeypatch.setattr(service, "_fire_instance", slow_fire)
    outcome = {}

    def complete():
        s = sessions()
        try:
            engine.complete(s, task.id, 11, {"ok": True})
            s.commit()
            outcome["user"] = "completed"
        except (Conflict, TaskNotReady) as exc:
            s.rollback()
            outcome["user"] = type(exc).__name__

    scheduler = threading.Thread(target=lambda: outcome.update(report=runner.run_due()))
    scheduler.start()
    assert inside.wait(10)
    user = threading.Thread(target=complete)
    user.start()
    user.join(0.3)
    proceed.set()
    scheduler.join(30)
    user.join(30)
    assert outcome["report"].fired == 1
    assert outcome["user"] in ("Conflict", "TaskNotReady")
    db.commit()
    db.expire_all()
    assert engine.task(db, task.id).status == TaskStatus.CANCELLED
    assert [t.element_id for t in engine.tasks(db, instance_id=inst.id)] == ["Approve_head"]
