"""Scheduled starts (timer start events) and the claiming rules, on an injected clock:
one occurrence at a time, a missed fire runs once, leases, retries, several workers."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from sqlalchemy import select

from engine.errors import EngineError
from engine.ports import SelectionSpec, StartRequest
from engine.scheduler import TimerRunner
from engine.store import ProcessInstance, Status, Timer, TimerKind, TimerStatus
from engine.timer_service import SKIPPED
from engine.timers import TimerSpec

from .support import bpmn

MSK = zoneinfo.ZoneInfo("Europe/Moscow")


def at_msk(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=MSK).astimezone(dt.UTC)


@pytest.fixture()
def factory(engine_sessions):
    return engine_sessions


@pytest.fixture()
def runner(engine, factory):
    return TimerRunner(engine, factory, worker_id="w1")


def settle(db):
    db.commit()
    db.expire_all()


def schedule_rows(db, status=None):
    settle(db)
    q = select(Timer).where(Timer.kind == TimerKind.START).order_by(Timer.id)
    if status:
        q = q.where(Timer.status == status)
    return list(db.scalars(q))


def started(db, definition_id):
    settle(db)
    return list(db.scalars(select(ProcessInstance).where(
        ProcessInstance.definition_id == definition_id).order_by(ProcessInstance.id)))


def deploy_schedule(engine, db, clock):
    clock.current = at_msk(2026, 3, 2, 12, 0)  # Monday noon in Moscow
    d = engine.deploy(db, bpmn("timer_schedule.bpmn"))
    db.commit()
    return d


def test_deploying_arms_the_next_weekday_morning(engine, db, clock):
    d = deploy_schedule(engine, db, clock)
    assert d.schedules == [{"element_id": "Start_weekdays", "kind": "cron",
                            "expression": "0 9 * * 1-5", "timezone": "Europe/Moscow",
                            "business_hours": False, "select": None}]
    [row] = schedule_rows(db)
    assert (row.status, row.due_at, row.sequence, row.instance_id) == (
        TimerStatus.PENDING, at_msk(2026, 3, 3, 9, 0), 0, None)
    assert row.schedule_key == f"{d.id}:Start_weekdays:{at_msk(2026, 3, 3, 9, 0).isoformat()}"


def test_a_due_schedule_starts_one_instance_and_arms_the_next(engine, db, clock, runner):
    d = deploy_schedule(engine, db, clock)
    clock.current = at_msk(2026, 3, 3, 9, 0)
    assert runner.run_due().fired == 1
    [inst] = started(db, d.id)
    assert inst.status == Status.COMPLETED
    data = engine.instance_data(db, inst.id)
    assert data["reported"] is True
    assert data["timer"] == {"element": "Start_weekdays",
                             "due_at": at_msk(2026, 3, 3, 9, 0).isoformat(),
                             "fired_at": at_msk(2026, 3, 3, 9, 0).isoformat()}
    [history] = [h for h in engine.history(db, inst.id) if h.event == "started"]
    assert "by the schedule of Start_weekdays" in history.message
    fired, pending = schedule_rows(db)
    assert (fired.status, fired.note, fired.fired_by) == (TimerStatus.FIRED,
                                                          "started 1 instance", "w1")
    assert (pending.status, pending.due_at, pending.sequence) == (
        TimerStatus.PENDING, at_msk(2026, 3, 4, 9, 0), 1)
    assert runner.run_due().claimed == 0  # nothing else is due


def test_after_downtime_a_missed_fire_runs_once(engine, db, clock, runner):
    d = deploy_schedule(engine, db, clock)
    clock.current = at_msk(2026, 3, 9, 11, 30)  # a week later: five mornings were missed
    assert runner.run_due().fired == 1
    assert len(started(db, d.id)) == 1
    [pending] = schedule_rows(db, TimerStatus.PENDING)
    assert pending.due_at == at_msk(2026, 3, 10, 9, 0)  # the next one after now, not the past
    # only the last fire is kept as the schedule's history
    assert [r.status for r in schedule_rows(db)] == [TimerStatus.FIRED, TimerStatus.PENDING]


def test_the_weekend_is_skipped(engine, db, clock, runner):
    d = deploy_schedule(engine, db, clock)
    for day in (3, 4, 5, 6):
        clock.current = at_msk(2026, 3, day, 9, 0, 1)
        assert runner.run_due().fired == 1
    [pending] = schedule_rows(db, TimerStatus.PENDING)
    assert pending.due_at == at_msk(2026, 3, 9, 9, 0)
    assert len(started(db, d.id)) == 4


def test_the_manual_start_leaves_the_schedule_alone(engine, db, clock):
    d = deploy_schedule(engine, db, clock)
    inst = engine.start(db, d, StartRequest({}, started_by=1))
    assert inst.status == Status.COMPLETED and inst.waiting == []
    with pytest.raises(EngineError, match="no timer start event Start_nope"):
        engine.start(db, d, StartRequest({}, timer="Start_nope"))


def test_deactivating_stops_the_schedule_and_activating_rearms_it(engine, db, clock, runner):
    d = deploy_schedule(engine, db, clock)
    engine.deactivate(db, d.key)
    db.commit()
    assert [r.status for r in schedule_rows(db)] == [TimerStatus.CANCELLED]
    clock.current = at_msk(2026, 3, 5, 12, 0)
    assert runner.run_due().claimed == 0
    engine.activate(db, d.key, d.version)
    db.commit()
    [pending] = schedule_rows(db, TimerStatus.PENDING)
    assert pending.due_at == at_msk(2026, 3, 6, 9, 0)


def test_a_new_version_takes_the_schedule_over(engine, db, clock, runner):
    v1 = deploy_schedule(engine, db, clock)
    v2 = engine.deploy(db, bpmn("timer_schedule.bpmn").replace("0 9 * * 1-5", "30 8 * * *"))
    db.commit()
    rows = {(r.definition_id, r.status) for r in schedule_rows(db)}
    assert rows == {(v1.id, TimerStatus.CANCELLED), (v2.id, TimerStatus.PENDING)}
    [pending] = schedule_rows(db, TimerStatus.PENDING)
    assert pending.due_at == at_msk(2026, 3, 3, 8, 30)


def test_one_occurrence_exists_once(engine, db, clock):
    d = deploy_schedule(engine, db, clock)
    spec = TimerSpec.from_dict(d.schedules[0])
    service = engine.timer_service
    service._add_occurrence(db, d, spec, at_msk(2026, 3, 3, 9, 0), 0, clock.now())
    service._add_occurrence(db, d, spec, at_msk(2026, 3, 3, 9, 0), 0, clock.now())
    assert len(schedule_rows(db)) == 1


def test_a_leased_timer_is_not_claimed_twice(engine, db, clock, factory):
    deploy_schedule(engine, db, clock)
    clock.current = at_msk(2026, 3, 3, 9, 0)
    service = engine.timer_service
    lease = dt.timedelta(seconds=60)
    with factory() as a, factory() as b:
        assert len(service.claim(a, "a", limit=10, lease=lease)) == 1
        a.commit()
        assert service.claim(b, "b", limit=10, lease=lease) == []
        b.commit()


def test_an_expired_lease_passes_to_another_worker_and_fires_once(engine, db, clock, factory):
    """Worker A claims and dies before firing; B takes the timer over after the lease."""
    d = deploy_schedule(engine, db, clock)
    clock.current = at_msk(2026, 3, 3, 9, 0)
    a = TimerRunner(engine, factory, worker_id="a", lease=30)
    b = TimerRunner(engine, factory, worker_id="b", lease=30)
    with factory() as s:
        [timer_id] = engine.timer_service.claim(s, "a", limit=10, lease=a.lease)
        s.commit()
    assert b.run_due().claimed == 0  # still A's
    assert b.next_due() == clock.now() + dt.timedelta(seconds=30)  # wakes when the lease ends
    clock.advance(30)
    assert b.run_due().fired == 1
    with factory() as s:  # A wakes up and tries to fire what it claimed: refused
        assert engine.timer_service.fire(s, timer_id, "a") == SKIPPED
        s.commit()
    assert len(started(db, d.id)) == 1
    row = db.get(Timer, timer_id)
    assert (row.fired_by, row.attempts) == ("b", 2)


def test_a_failing_fire_is_retried_then_marked_failed(engine, db, clock, runner):
    d = deploy_schedule(engine, db, clock)
    d.schedules = [dict(d.schedules[0], select={"entity": "deal"})]  # no selector here
    db.commit()
    clock.current = at_msk(2026, 3, 3, 9, 0)
    for attempt in range(1, 6):
        report = runner.run_due()
        assert (report.claimed, report.failed) == (1, 1), attempt
        [row] = schedule_rows(db)
        assert "no selector" in row.note
        clock.advance(5 * attempt)  # the back-off grows with the attempts
    [row] = schedule_rows(db)
    assert row.status == TimerStatus.FAILED and row.attempts == 5
    assert row.note.startswith("failed 5 times")
    assert started(db, d.id) == []
    assert [t.id for t in engine.timer_service.failed(db)] == [row.id]


class ListSelector:
    """Selects fixed records; validates only the entity name."""

    def __init__(self, ids):
        self.ids = ids
        self.calls = []

    def validate(self, session, spec):
        return None if spec.entity == "deal" else f"unknown entity '{spec.entity}'"

    def select(self, session, spec, now):
        self.calls.append((spec, now))
        return [StartRequest({"deal": {"id": i}}, "deal", i) for i in self.ids]


def test_a_selection_starts_one_instance_per_record(engine, db, clock, runner):
    engine.selector = engine.compiler.selector = ListSelector([4, 8, 15])
    xml = bpmn("timer_schedule.bpmn").replace(
        '<bpmn:timerEventDefinition><bpmn:timeCycle>0 9',
        '<bpmn:extensionElements><marshrut:select entity="deal" idleDays="7">'
        '<marshrut:filter name="stage__in" value="NEW"/></marshrut:select>'
        '</bpmn:extensionElements><bpmn:timerEventDefinition><bpmn:timeCycle>0 9')
    clock.current = at_msk(2026, 3, 2, 12, 0)
    d = engine.deploy(db, xml)
    db.commit()
    assert d.schedules[0]["select"] == {"entity": "deal", "idle_days": 7, "open_only": True,
                                        "filters": [["stage__in", "NEW"]]}
    clock.current = at_msk(2026, 3, 3, 9, 0)
    assert runner.run_due().fired == 1
    instances = started(db, d.id)
    assert [(i.entity_type, i.entity_id) for i in instances] == [
        ("deal", 4), ("deal", 8), ("deal", 15)]
    [(spec, now)] = engine.selector.calls
    assert spec == SelectionSpec("deal", 7, True, (("stage__in", "NEW"),))
    assert now == clock.now()
    [fired] = schedule_rows(db, TimerStatus.FIRED)
    assert fired.note == "started 3 instances"
