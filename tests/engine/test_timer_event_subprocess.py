"""Event sub-processes started by a timer (``engine.timer_scopes``): "still not handled after
2 days: notify the head of sales" (non-interrupting) and "after 5 days: hand over"
(interrupting), at the process level and inside an embedded sub-process; the timer is a row
of the ``timer`` table from the moment its scope starts, fired by the scheduler — also after a
restart — and cancelled when the scope ends first."""
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

from .support import bpmn, fire_due, restarted

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DAY = 86400


@pytest.fixture()
def runner(engine, engine_sessions):
    return TimerRunner(engine, engine_sessions, worker_id="test")


def start(engine: Engine, db: Any, name: str, data: dict[str, Any] | None = None) -> Any:
    d = engine.deploy(db, bpmn(name))
    inst = engine.start(db, d, StartRequest(data or {}))
    db.commit()
    return inst



def timers_of(db: Any, instance_id: int, status: str | None = None) -> list[Timer]:
    q = select(Timer).where(Timer.instance_id == instance_id).order_by(Timer.id)
    if status:
        q = q.where(Timer.status == status)
    db.commit()
    db.expire_all()
    return list(db.scalars(q))



def history(engine: Engine, db: Any, instance_id: int) -> list[tuple[str, str | None]]:
    return [(h.event, h.element_id) for h in engine.history(db, instance_id)]


def open_tasks(engine: Engine, db: Any, instance_id: int) -> list[str]:
    return sorted(t.element_id for t in engine.tasks(db, instance_id=instance_id))


def test_the_timers_are_rows_from_the_start(engine, db, clock):
    clock.current = T0
    inst = start(engine, db, "timer_event_subprocess.bpmn")
    rows = {t.element_id: t for t in timers_of(db, inst.id)}
    assert {k: (r.kind, r.status, r.due_at) for k, r in rows.items()} == {
        "Remind_start": (TimerKind.EVENT_SUBPROCESS, TimerStatus.PENDING,
                         T0 + dt.timedelta(days=2)),
        "Handover_start": (TimerKind.EVENT_SUBPROCESS, TimerStatus.PENDING,
                           T0 + dt.timedelta(days=5))}
    waiting = {(w["element"], w["type"]) for w in engine.instance(db, inst.id).waiting}
    assert {("Remind_start", "TimerEventDefinition"),
            ("Handover_start", "TimerEventDefinition")} <= waiting
    assert open_tasks(engine, db, inst.id) == ["Handle"]
    # nothing of the event sub-processes ran or was entered yet
    assert not {"Remind_sp", "Notify_head", "Handover_sp"} & {e for _, e in history(
        engine, db, inst.id)}


def test_non_interrupting_fires_beside_the_open_task_then_interrupting_hands_over(
        engine, db, clock, runner, engine_sessions):
    clock.current = T0
    inst = start(engine, db, "timer_event_subprocess.bpmn")
    [task] = engine.tasks(db, instance_id=inst.id)
    clock.advance(DAY)
    assert fire_due(runner, db).claimed == 0  # not yet
    engine, runner = restarted(engine, db, engine_sessions)

    clock.advance(DAY)  # two days: the reminder
    assert fire_due(runner, db).fired == 1
    [same] = engine.tasks(db, instance_id=inst.id)
    assert same.id == task.id and same.status == TaskStatus.OPEN  # not interrupted
    assert engine.instance(db, inst.id).status == Status.WAITING
    assert engine.instance_data(db, inst.id)["reminded"] is True
    rows = {t.element_id: t.status for t in timers_of(db, inst.id)}
    assert rows == {"Remind_start": TimerStatus.FIRED, "Handover_start": TimerStatus.PENDING}
    events = history(engine, db, inst.id)
    assert ("timer_fired", "Remind_start") in events
    assert {("left", "Remind_start"), ("left", "Notify_head"), ("left", "Remind_end"),
            ("left", "Remind_sp")} <= set(events)
    assert ("left", "Handle") not in events
    engine, runner = restarted(engine, db, engine_sessions)

    clock.advance(3 * DAY)  # five days: hand over
    assert fire_due(runner, db).fired == 1
    assert engine.task(db, task.id).status == TaskStatus.CANCELLED
    [take_over] = engine.tasks(db, instance_id=inst.id)
    assert (take_over.element_id, take_over.assignee_id) == ("Take_over", 10)
    assert {t.status for t in timers_of(db, inst.id)} == {TimerStatus.FIRED}
    engine.complete(db, take_over.id, 10, {"ok": True})
    db.commit()
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    events = history(engine, db, inst.id)
    assert ("left", "Handover_sp") in events and ("left", "Handle") not in events


def test_interrupting_alone_cancels_the_task_and_the_reminder(engine, db, clock, runner):
    clock.current = T0
    inst = start(engine, db, "timer_event_subprocess.bpmn")
    [task] = engine.tasks(db, instance_id=inst.id)
    rows = {t.element_id: t for t in timers_of(db, inst.id)}
    with db.begin_nested():  # as if the hand-over came first
        rows["Handover_start"].due_at = T0 + dt.timedelta(hours=1)
    db.commit()
    clock.advance(3600)
    assert fire_due(runner, db).fired == 1
    assert engine.task(db, task.id).status == TaskStatus.CANCELLED
    assert open_tasks(engine, db, inst.id) == ["Take_over"]
    rows = {t.element_id: t.status for t in timers_of(db, inst.id)}
    # interrupted: the scope's other event sub-processes no longer start
    assert rows == {"Remind_start": TimerStatus.CANCELLED,
                    "Handover_start": TimerStatus.FIRED}
    clock.advance(7 * DAY)
    assert fire_due(runner, db).claimed == 0
    assert "reminded" not in engine.instance_data(db, inst.id)


def test_the_process_ending_first_cancels_the_timers(engine, db, clock, runner):
    clock.current = T0
    inst = start(engine, db, "timer_event_subprocess.bpmn")
    [task] = engine.tasks(db, instance_id=inst.id)
    clock.advance(600)
    engine.complete(db, task.id, 11, {"ok": True})
    db.commit()
    assert engine.instance(db, inst.id).status == Status.COMPLETED  # no timer held it back
    assert {t.status for t in timers_of(db, inst.id)} == {TimerStatus.CANCELLED}
    clock.advance(10 * DAY)
    assert fire_due(runner, db).claimed == 0


def test_inside_a_sub_process_it_interrupts_only_the_sub_process(
        engine, db, clock, runner, engine_sessions):
    clock.current = T0
    inst = start(engine, db, "timer_event_subprocess_nested.bpmn")
    [row] = timers_of(db, inst.id)
    assert (row.element_id, row.kind, row.due_at) == (
        "Timeout_start", TimerKind.EVENT_SUBPROCESS, T0 + dt.timedelta(hours=1))
    [do] = engine.tasks(db, instance_id=inst.id)
    engine, runner = restarted(engine, db, engine_sessions)
    clock.advance(3600)
    assert fire_due(runner, db).fired == 1
    assert engine.task(db, do.id).status == TaskStatus.CANCELLED
    assert open_tasks(engine, db, inst.id) == ["After"]  # the process went on after Work
    assert engine.instance_data(db, inst.id)["timed_out"] is True
    events = history(engine, db, inst.id)
    assert {("timer_fired", "Timeout_start"), ("left", "Timed_out"),
            ("left", "Timeout_sp"), ("left", "Work")} <= set(events)


def test_the_sub_process_ending_first_cancels_its_timer(engine, db, clock, runner):
    clock.current = T0
    inst = start(engine, db, "timer_event_subprocess_nested.bpmn")
    [do] = engine.tasks(db, instance_id=inst.id)
    clock.advance(600)
    engine.complete(db, do.id, 11, {})
    db.commit()
    [row] = timers_of(db, inst.id)
    assert row.status == TimerStatus.CANCELLED
    assert open_tasks(engine, db, inst.id) == ["After"]
    clock.advance(DAY)
    assert fire_due(runner, db).claimed == 0
    assert "timed_out" not in engine.instance_data(db, inst.id)


def test_a_cycle_fires_each_time_beside_the_task(engine, db, clock, runner, engine_sessions):
    clock.current = T0
    inst = start(engine, db, "timer_event_subprocess_cycle.bpmn", {"pings": 0})
    [task] = engine.tasks(db, instance_id=inst.id)
    for n in (1, 2):
        clock.advance(3600)
        assert fire_due(runner, db).fired == 1
        assert engine.instance_data(db, inst.id)["pings"] == n
        engine, runner = restarted(engine, db, engine_sessions)
    rows = timers_of(db, inst.id)
    assert [(r.status, r.due_at) for r in rows] == [
        (TimerStatus.FIRED, T0 + dt.timedelta(hours=1)),
        (TimerStatus.FIRED, T0 + dt.timedelta(hours=2)),
        (TimerStatus.PENDING, T0 + dt.timedelta(hours=3))]
    clock.advance(3600)
    assert fire_due(runner, db).fired == 1
    assert engine.instance_data(db, inst.id)["pings"] == 3
    assert not timers_of(db, inst.id, TimerStatus.PENDING)  # R3: done
    assert engine.task(db, task.id).status == TaskStatus.OPEN
    assert [e for e in db.scalars(select(ProcessHistory.element_id).where(
        ProcessHistory.instance_id == inst.id, ProcessHistory.event == "left"))
        ].count("Ping") == 3
    engine.complete(db, task.id, 11, {})
    db.commit()
    assert engine.instance(db, inst.id).status == Status.COMPLETED


def test_an_already_past_date_fires_at_once(engine, db, clock):
    clock.current = T0
    xml = bpmn("timer_event_subprocess.bpmn").replace(
        "<bpmn:timeDuration>P2D</bpmn:timeDuration>",
        "<bpmn:timeDate>2026-01-01T09:00:00Z</bpmn:timeDate>")
    d = engine.deploy(db, xml)
    inst = engine.start(db, d, StartRequest({}))
    db.commit()
    assert engine.instance_data(db, inst.id)["reminded"] is True
    assert open_tasks(engine, db, inst.id) == ["Handle"]
    assert ("timer_fired", "Remind_start") in history(engine, db, inst.id)


@pytest.mark.parametrize(("old", "new", "element", "message"), [
    ("<bpmn:timeDuration>P2D</bpmn:timeDuration>",
     "<bpmn:timeDuration>two days</bpmn:timeDuration>", "Remind_start", "timeDuration"),
    ("<bpmn:timeDuration>P5D</bpmn:timeDuration>",
     "<bpmn:timeDuration>PT0S</bpmn:timeDuration>", "Handover_start", "is zero"),
    ("<bpmn:timeDuration>P5D</bpmn:timeDuration>",
     "<bpmn:timeCycle>R/PT1H</bpmn:timeCycle>", "Handover_start",
     "an interrupting event sub-process starts once"),
    ("<bpmn:timeDuration>P2D</bpmn:timeDuration>",
     "<bpmn:timeCycle>every day</bpmn:timeCycle>", "Remind_start", "cron"),
    ("<bpmn:timeDuration>P2D</bpmn:timeDuration>", "", "Remind_start",
     "the timer needs exactly one of"),
])
def test_a_bad_timer_is_refused_naming_the_element(engine, db, old, new, element, message):
    with pytest.raises(DefinitionInvalid) as caught:
        engine.deploy(db, bpmn("timer_event_subprocess.bpmn").replace(old, new))
    assert [(e.element_id, message in e.message) for e in caught.value.errors] == [
        (element, True)], caught.value.errors


def test_viewer_and_heatmap_show_them_as_the_other_event_sub_processes(engine, db, clock,
                                                                       runner):
    from automation.process_trace import heatmap, instance_trace

    clock.current = T0
    d = engine.deploy(db, bpmn("timer_event_subprocess.bpmn"))
    reminded = engine.start(db, d, StartRequest({}))
    done = engine.start(db, d, StartRequest({}))
    db.commit()
    trace = instance_trace(db, reminded, d.bpmn_xml)
    # the viewer shows the timers waiting beside the task
    assert {"Handle", "Remind_start", "Handover_start"} <= set(trace["active"])
    [task] = engine.tasks(db, instance_id=done.id)
    engine.complete(db, task.id, 11, {"ok": True})
    clock.advance(2 * DAY)
    assert fire_due(runner, db).fired == 1  # the other instance's timers were cancelled
    trace = instance_trace(db, engine.instance(db, reminded.id), d.bpmn_xml)
    assert {"Remind_sp", "Remind_start", "Notify_head", "Remind_end"} <= set(trace["done"])
    assert {"R1", "R2"} <= set(trace["flows"])
    assert "Remind_start" not in trace["active"] and "Handover_start" in trace["active"]
    heat = heatmap(db, d.id)
    for element in ("Remind_sp", "Remind_start", "Notify_head", "Remind_end"):
        assert heat["passed"][element] == 1, element
    assert heat["passed"]["Start_0"] == 2 and heat["active"] == {"Handle": 1}


def test_an_instance_started_after_another_fired_waits_for_its_own_timers(engine, db, clock,
                                                                           runner):
    """The spec objects are shared by the instances of a version: triggering one instance's
    event sub-process must not make the next instance start it at once."""
    clock.current = T0
    d = engine.deploy(db, bpmn("timer_event_subprocess.bpmn"))
    first = engine.start(db, d, StartRequest({}))
    db.commit()
    clock.advance(5 * DAY)
    fire_due(runner, db)  # both due: the reminder, then the hand-over (with it)
    assert {t.status for t in timers_of(db, first.id)} == {TimerStatus.FIRED}
    assert engine.instance_data(db, first.id)["reminded"] is True
    assert open_tasks(engine, db, first.id) == ["Take_over"]
    second = engine.start(db, d, StartRequest({}))
    db.commit()
    assert open_tasks(engine, db, second.id) == ["Handle"]
    assert "reminded" not in engine.instance_data(db, second.id)
    rows = {t.element_id: t.status for t in timers_of(db, second.id)}
    assert rows == {"Remind_start": TimerStatus.PENDING, "Handover_start": TimerStatus.PENDING}


def test_the_same_holds_for_an_interrupting_message_start(engine, db):
    """It did not: the library's trigger connected the event sub-process to the start of the
    shared spec, so every instance started after one got the message was interrupted at once."""
    xml = bpmn("timer_event_subprocess.bpmn").replace(
        "<bpmn:timerEventDefinition><bpmn:timeDuration>P5D</bpmn:timeDuration>"
        "</bpmn:timerEventDefinition>", '<bpmn:messageEventDefinition messageRef="Msg_stale"/>'
    ).replace("<bpmn:process ", '<bpmn:message id="Msg_stale" name="deal.stale"/><bpmn:process ')
    d = engine.deploy(db, xml)
    first = engine.start(db, d, StartRequest({}))
    engine.send_message(db, first.id, "deal.stale", {})
    assert open_tasks(engine, db, first.id) == ["Take_over"]
    second = engine.start(db, d, StartRequest({}))
    assert open_tasks(engine, db, second.id) == ["Handle"]
    engine.send_message(db, second.id, "deal.stale", {})
    assert open_tasks(engine, db, second.id) == ["Take_over"]


CALLER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="Defs_caller" targetNamespace="t">
  <bpmn:process id="caller" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:sequenceFlow id="C1" sourceRef="S" targetRef="Call"/>
    <bpmn:callActivity id="Call" calledElement="deal_timeout"/>
    <bpmn:sequenceFlow id="C2" sourceRef="Call" targetRef="After"/>
    <bpmn:manualTask id="After" marshrut:assignment="user" marshrut:assignee="head@test.local"/>
    <bpmn:sequenceFlow id="C3" sourceRef="After" targetRef="E"/>
    <bpmn:endEvent id="E"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_in_a_called_process_it_runs_while_the_call_runs(engine, db, clock, runner,
                                                          engine_sessions):
    clock.current = T0
    engine.deploy(db, bpmn("timer_event_subprocess.bpmn"))
    d = engine.deploy(db, CALLER)
    inst = engine.start(db, d, StartRequest({}))
    db.commit()
    assert {t.element_id for t in timers_of(db, inst.id, TimerStatus.PENDING)} == {
        "Remind_start", "Handover_start"}
    [handle] = engine.tasks(db, instance_id=inst.id)
    engine, runner = restarted(engine, db, engine_sessions)
    clock.advance(2 * DAY)
    assert fire_due(runner, db).fired == 1
    assert open_tasks(engine, db, inst.id) == ["Handle"]
    engine.complete(db, handle.id, 11, {"ok": True})  # the called process ends
    db.commit()
    assert open_tasks(engine, db, inst.id) == ["After"]
    assert engine.instance_data(db, inst.id)["reminded"] is True
    rows = {t.element_id: t.status for t in timers_of(db, inst.id)}
    assert rows == {"Remind_start": TimerStatus.FIRED, "Handover_start": TimerStatus.CANCELLED}


def test_a_selection_on_it_is_refused(engine, db):
    xml = bpmn("timer_event_subprocess.bpmn").replace(
        '<bpmn:startEvent id="Remind_start" name="2 days passed" isInterrupting="false">',
        '<bpmn:startEvent id="Remind_start" name="2 days passed" isInterrupting="false">'
        '<bpmn:extensionElements><marshrut:select entity="deal"/></bpmn:extensionElements>')
    errors = engine.validate(xml)
    assert [e.element_id for e in errors] == ["Remind_start"], errors
    assert "belongs on the timer start event of a process" in errors[0].message


def test_business_hours_count_working_time(engine, db, clock):
    """Friday 17:00 Moscow + 2 working hours: Monday 10:00 (as boundary timers)."""
    clock.current = dt.datetime(2026, 3, 6, 14, 0, tzinfo=dt.UTC)
    xml = bpmn("timer_event_subprocess.bpmn").replace(
        'isInterrupting="false">\n        <bpmn:timerEventDefinition><bpmn:timeDuration>P2D',
        'isInterrupting="false" marshrut:businessHours="true">\n'
        '        <bpmn:timerEventDefinition><bpmn:timeDuration>PT2H')
    assert "PT2H" in xml
    inst = engine.start(db, engine.deploy(db, xml), StartRequest({}))
    db.commit()
    rows = {t.element_id: t.due_at for t in timers_of(db, inst.id)}
    assert rows["Remind_start"] == dt.datetime(2026, 3, 9, 7, 0, tzinfo=dt.UTC)
