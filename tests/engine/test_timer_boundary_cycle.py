"""A repeating non-interrupting boundary timer ("remind every hour, three times, until the
task is done", ``engine.timer_events``): each occurrence runs the boundary's path once while
the task stays open; the timer row is re-armed until ``R<n>`` is used up or the task ends
(then cancelled); it survives a restart, and a fire missed during downtime runs once."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from engine.errors import DefinitionInvalid
from engine.ports import StartRequest
from engine.runtime import Engine
from engine.scheduler import TimerRunner
from engine.store import ProcessHistory, Status, TaskStatus, Timer, TimerKind, TimerStatus

from .miwg_exec import executable
from .support import FakeOperation, bpmn, fire_due, restarted

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
HOUR = 3600
NAME = "timer_boundary_cycle.bpmn"
#: the reminder is a task for the head instead of a notification
REMIND_BY_HAND = bpmn(NAME).replace(
    '<bpmn:serviceTask id="Notify" marshrut:operation="test.notify"/>',
    '<bpmn:userTask id="Notify" marshrut:assignment="user" marshrut:assignee="head@test.local"/>')


@pytest.fixture()
def notify(registry):
    op = FakeOperation("test.notify")
    registry.register(op)
    return op


@pytest.fixture()
def runner(engine, engine_sessions):
    return TimerRunner(engine, engine_sessions, worker_id="test")


def start(engine: Engine, db: Any, xml: str | None = None) -> Any:
    d = engine.deploy(db, xml or bpmn(NAME))
    inst = engine.start(db, d, StartRequest({"reminders": 0}))
    db.commit()
    return inst



def rows(db: Any, instance_id: int) -> list[tuple[str, dt.datetime]]:
    db.commit()
    db.expire_all()
    return [(t.status, t.due_at) for t in db.scalars(
        select(Timer).where(Timer.instance_id == instance_id).order_by(Timer.id))]



def left(db: Any, instance_id: int, element: str) -> int:
    return list(db.scalars(select(ProcessHistory.element_id).where(
        ProcessHistory.instance_id == instance_id, ProcessHistory.event == "left"))
    ).count(element)


def waits_for_remind(engine: Engine, db: Any, instance_id: int) -> bool:
    return any(w["element"] == "Remind" for w in engine.instance(db, instance_id).waiting)


def test_it_fires_three_times_beside_the_open_task(engine, db, clock, runner, engine_sessions,
                                                    notify):
    clock.current = T0
    inst = start(engine, db)
    [task] = engine.tasks(db, instance_id=inst.id)
    [row] = db.scalars(select(Timer).where(Timer.instance_id == inst.id)).all()
    assert (row.kind, row.element_id, row.due_at) == (TimerKind.BOUNDARY, "Remind",
                                                      T0 + dt.timedelta(hours=1))
    clock.advance(HOUR - 60)
    assert fire_due(runner, db).claimed == 0  # not yet
    for n in (1, 2, 3):
        engine, runner = restarted(engine, db, engine_sessions)
        clock.current = T0 + dt.timedelta(hours=n)
        assert fire_due(runner, db).fired == 1
        assert len(notify.calls) == n  # the reminder path ran once more
        assert left(db, inst.id, "Count") == n and left(db, inst.id, "Remind") == n
        assert engine.task(db, task.id).status == TaskStatus.OPEN  # not interrupted
        assert engine.instance(db, inst.id).status == Status.WAITING
        assert waits_for_remind(engine, db, inst.id) is (n < 3)
    assert notify.calls[0][2]["reminders"] == 1  # each path from the task's data
    assert rows(db, inst.id) == [(TimerStatus.FIRED, T0 + dt.timedelta(hours=h))
                                 for h in (1, 2, 3)]  # R3: no fourth row
    clock.advance(10 * HOUR)
    assert fire_due(runner, db).claimed == 0
    assert len(notify.calls) == 3
    engine.complete(db, task.id, task.assignee_id, {})
    db.commit()
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    assert engine.task(db, task.id).status == TaskStatus.COMPLETED


def test_completing_the_task_cancels_the_timer(engine, db, clock, runner, notify):
    clock.current = T0
    inst = start(engine, db)
    [task] = engine.tasks(db, instance_id=inst.id)
    clock.advance(HOUR)
    assert fire_due(runner, db).fired == 1
    assert rows(db, inst.id) == [(TimerStatus.FIRED, T0 + dt.timedelta(hours=1)),
                                 (TimerStatus.PENDING, T0 + dt.timedelta(hours=2))]
    clock.advance(600)
    engine.complete(db, task.id, task.assignee_id, {})
    db.commit()
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    assert [s for s, _due in rows(db, inst.id)] == [TimerStatus.FIRED, TimerStatus.CANCELLED]
    clock.advance(5 * HOUR)
    assert fire_due(runner, db).claimed == 0
    assert len(notify.calls) == 1


def test_a_fire_missed_during_downtime_runs_once(engine, db, clock, runner, engine_sessions,
                                                 notify):
    clock.current = T0
    inst = start(engine, db)
    engine, runner = restarted(engine, db, engine_sessions)
    clock.current = T0 + dt.timedelta(hours=2, minutes=30)  # down through 10:00 and 11:00
    assert fire_due(runner, db).fired == 1
    assert len(notify.calls) == 1
    assert rows(db, inst.id)[-1] == (TimerStatus.PENDING, T0 + dt.timedelta(hours=3))
    clock.current = T0 + dt.timedelta(hours=3)
    assert fire_due(runner, db).fired == 1
    assert len(notify.calls) == 2  # 11:00 was skipped; 12:00 was the third and last
    assert not waits_for_remind(engine, db, inst.id)
    assert [s for s, _due in rows(db, inst.id)] == [TimerStatus.FIRED, TimerStatus.FIRED]


def test_a_reminder_still_running_outlives_the_task(engine, db, clock, runner):
    """Ending the activity cancels the timer, not a reminder path that already started."""
    clock.current = T0
    inst = start(engine, db, REMIND_BY_HAND)
    [task] = engine.tasks(db, instance_id=inst.id)
    clock.advance(HOUR)
    assert fire_due(runner, db).fired == 1
    assert sorted(t.element_id for t in engine.tasks(db, instance_id=inst.id)) == [
        "Approve", "Notify"]
    engine.complete(db, task.id, task.assignee_id, {})
    db.commit()
    [call] = engine.tasks(db, instance_id=inst.id)
    assert call.element_id == "Notify" and call.status == TaskStatus.OPEN
    assert engine.instance(db, inst.id).status == Status.WAITING
    assert [s for s, _due in rows(db, inst.id)] == [TimerStatus.FIRED, TimerStatus.CANCELLED]
    engine.complete(db, call.id, call.assignee_id, {})
    db.commit()
    assert engine.instance(db, inst.id).status == Status.COMPLETED


def test_a_cron_cycle_deploys_and_fires_at_its_times(engine, db, clock, runner, notify):
    xml = bpmn(NAME).replace("R3/PT1H", "30 9 * * *").replace(
        'cancelActivity="false"', 'cancelActivity="false" marshrut:timezone="UTC"')
    clock.current = T0  # 09:00 UTC
    inst = start(engine, db, xml)
    assert rows(db, inst.id) == [(TimerStatus.PENDING, T0 + dt.timedelta(minutes=30))]
    clock.advance(HOUR)
    assert fire_due(runner, db).fired == 1
    assert rows(db, inst.id)[-1] == (TimerStatus.PENDING,
                                     T0 + dt.timedelta(days=1, minutes=30))
    assert len(notify.calls) == 1


def test_a_receive_task_reminds_daily_until_the_answer_comes(engine, db, clock, runner,
                                                             registry):
    """MIWG C.9.1: "daily" (R6/P1D, non-interrupting) on a receive task."""
    registry.register(FakeOperation("test.noop"))
    clock.current = T0
    d = engine.deploy(db, executable("C.9.1.bpmn"))
    inst = engine.start(db, d, StartRequest({}))
    db.commit()
    for n in (1, 2):
        clock.advance(24 * HOUR)
        assert fire_due(runner, db).fired == 1
        assert left(db, inst.id, "SendTask_SendReminderEmail") == n
    message = next(w["event"] for w in engine.instance(db, inst.id).waiting
                   if w["type"] == "MessageEventDefinition")
    engine.send_message(db, inst.id, message, {})
    db.commit()
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    assert {s for s, _due in rows(db, inst.id)} == {TimerStatus.FIRED, TimerStatus.CANCELLED}


@pytest.mark.parametrize(("old", "new", "message"), [
    ('cancelActivity="false"', 'cancelActivity="true"',
     "boundary timer Remind interrupts its activity, so it fires once"),
    ('cancelActivity="false"', "",
     "boundary timer Remind interrupts its activity, so it fires once"),
    ("R3/PT1H", "R3/PX", "timeCycle: 'PX' is not an ISO 8601 duration"),
    ("R3/PT1H", "R0/PT1H", "the repeat count '0'"),
    ("R3/PT1H", "every hour", "timeCycle"),
])
def test_a_bad_cycle_is_refused_naming_the_element(engine, db, notify, old, new, message):
    with pytest.raises(DefinitionInvalid) as caught:
        engine.deploy(db, bpmn(NAME).replace(old, new))
    assert [(e.element_id, message in e.message) for e in caught.value.errors] == [
        ("Remind", True)], caught.value.errors
    assert "Remind" in str(caught.value)


def test_an_intermediate_timer_still_refuses_a_cycle(engine, db):
    xml = bpmn("timer_wait.bpmn")
    assert "<bpmn:timeDuration>" in xml
    xml = xml.replace("<bpmn:timeDuration>P3D</bpmn:timeDuration>",
                      "<bpmn:timeCycle>R3/PT1H</bpmn:timeCycle>")
    errors = engine.validate(xml, session=db)
    assert any("timeCycle is for timer start events and non-interrupting boundary timers"
               in e.message for e in errors), errors


def test_an_occurrence_due_when_the_instance_moves_on_runs_then(engine, db, clock, runner):
    """The scheduler did not get to it (it was down); finishing a reminder after the next
    occurrence was due runs that occurrence at once, and its row is closed as fired."""
    clock.current = T0
    inst = start(engine, db, REMIND_BY_HAND)
    clock.advance(HOUR)
    assert fire_due(runner, db).fired == 1
    [call] = [t for t in engine.tasks(db, instance_id=inst.id) if t.element_id == "Notify"]
    clock.current = T0 + dt.timedelta(hours=2, minutes=30)
    engine.complete(db, call.id, call.assignee_id, {})
    db.commit()
    assert sorted(t.element_id for t in engine.tasks(db, instance_id=inst.id)) == [
        "Approve", "Notify"]  # the 11:00 reminder, run when the instance moved
    assert rows(db, inst.id) == [(TimerStatus.FIRED, T0 + dt.timedelta(hours=1)),
                                 (TimerStatus.FIRED, T0 + dt.timedelta(hours=2)),
                                 (TimerStatus.PENDING, T0 + dt.timedelta(hours=3))]
    assert fire_due(runner, db).claimed == 0


def test_on_a_sub_process_it_reminds_until_the_sub_process_ends(engine, db, clock, runner,
                                                                notify):
    xml = bpmn(NAME).replace(
        '<bpmn:userTask id="Approve" name="Approve" marshrut:assignment="user" '
        'marshrut:assignee="m1@test.local"/>',
        '<bpmn:subProcess id="Approve"><bpmn:startEvent id="Sub_start"/>'
        '<bpmn:sequenceFlow id="S1" sourceRef="Sub_start" targetRef="Check"/>'
        '<bpmn:userTask id="Check" marshrut:assignment="user" '
        'marshrut:assignee="m1@test.local"/>'
        '<bpmn:sequenceFlow id="S2" sourceRef="Check" targetRef="Sub_end"/>'
        '<bpmn:endEvent id="Sub_end"/></bpmn:subProcess>')
    assert 'subProcess id="Approve"' in xml
    clock.current = T0
    inst = start(engine, db, xml)
    for n in (1, 2):
        clock.current = T0 + dt.timedelta(hours=n)
        assert fire_due(runner, db).fired == 1
        assert len(notify.calls) == n
    [check] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, check.id, check.assignee_id, {})
    db.commit()
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    assert [s for s, _due in rows(db, inst.id)] == [TimerStatus.FIRED, TimerStatus.FIRED,
                                                    TimerStatus.CANCELLED]


def test_viewer_and_heatmap_show_the_reminders(engine, db, clock, runner, notify):
    from automation.process_trace import heatmap, instance_trace

    clock.current = T0
    d = engine.deploy(db, bpmn(NAME))
    inst = engine.start(db, d, StartRequest({"reminders": 0}))
    db.commit()
    assert "Remind" in instance_trace(db, engine.instance(db, inst.id), d.bpmn_xml)["active"]
    for n in (1, 2, 3):
        clock.current = T0 + dt.timedelta(hours=n)
        assert fire_due(runner, db).fired == 1
    trace = instance_trace(db, engine.instance(db, inst.id), d.bpmn_xml)
    assert {"Remind", "Count", "Notify", "End_reminded"} <= set(trace["done"])
    assert "Remind" not in trace["active"] and "Approve" in trace["active"]  # R3 used up
    heat = heatmap(db, d.id)  # instances that passed each element
    for element in ("Remind", "Count", "Notify", "End_reminded"):
        assert heat["passed"][element] == 1, element
    assert heat["active"] == {"Approve": 1}
    assert left(db, inst.id, "Remind") == 3
