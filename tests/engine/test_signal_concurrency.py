"""Signals under concurrency, on SQLite and PostgreSQL: workers delivering the same broadcast
start one instance of each listening definition, and concurrent broadcasts reach each
waiting catch exactly once — none lost, none doubled. A worker that loses a race gets
``Conflict`` and runs its whole unit of work again, as the scheduler and dispatcher do."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from engine.errors import Conflict, TaskNotReady
from engine.ports import StartRequest
from engine.store import ProcessDefinition, ProcessHistory, ProcessInstance, Status

from .support import bpmn


def race(n: int, action: Callable[[int, threading.Barrier], None]) -> list[str]:
    """Run ``action(i, barrier)`` in ``n`` threads released together; "ok", "conflict",
    "not ready" or the repr of anything else (which the assertions then show)."""
    barrier = threading.Barrier(n)
    results: list[str] = []

    def worker(i: int) -> None:
        try:
            action(i, barrier)
            results.append("ok")
        except Conflict:
            results.append("conflict")
        except TaskNotReady:
            results.append("not ready")
        except Exception as exc:  # noqa: BLE001 - shown by the assertion
            results.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sorted(results)


def retrying(engine_sessions: Any, work: Callable[[Any], None], *, write: bool) -> None:
    """One worker's unit of work, run again on a lost race (at most 10 times)."""
    for _ in range(10):
        s = engine_sessions(write=write)
        try:
            work(s)
            s.commit()
            return
        except Conflict:
            s.rollback()
        finally:
            s.close()
    raise AssertionError("the unit of work lost 10 races in a row")


def count(db: Any, key: str) -> int:
    return len(db.scalars(select(ProcessInstance.id).join(ProcessDefinition)
                          .where(ProcessDefinition.key == key)).all())


def received(db: Any, instance_id: int) -> list[str]:
    return sorted(db.scalars(select(ProcessHistory.message).where(
        ProcessHistory.instance_id == instance_id, ProcessHistory.event == "signal")))


def second_listener() -> str:
    return bpmn("signal_started.bpmn").replace('id="signal_started"', 'id="signal_started_2"')


@pytest.mark.parametrize("write", [True, False], ids=["writer", "deferred"])
def test_two_workers_delivering_one_broadcast_start_one_instance_each(engine, db,
                                                                      engine_sessions, write):
    engine.deploy(db, bpmn("signal_started.bpmn"))
    engine.deploy(db, second_listener())
    db.commit()

    def throw(i: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        retrying(engine_sessions, lambda s: engine.throw_signal(
            s, "prices.updated", {"worker": i}, event_id=4242), write=write)

    assert race(2, throw) == ["ok", "ok"]
    db.expire_all()
    assert (count(db, "signal_started"), count(db, "signal_started_2")) == (1, 1)


def test_two_workers_running_the_same_throw_start_one_instance(engine, db, sessions):
    engine.deploy(db, bpmn("signal_started.bpmn"))
    thrower = engine.deploy(db, bpmn("signal_thrower.bpmn"))
    t = engine.start(db, thrower, StartRequest({"halt": False}, "deal", 9))
    [task] = engine.tasks(db, instance_id=t.id)
    db.commit()

    def complete(i: int, barrier: threading.Barrier) -> None:
        s = sessions()
        try:
            engine.task(s, task.id)  # both have read the open task before either writes
            barrier.wait()
            engine.complete(s, task.id, 10, {})
            s.commit()
        except BaseException:
            s.rollback()
            raise

    results = race(2, complete)
    assert results.count("ok") == 1 and set(results) <= {"ok", "conflict", "not ready"}
    db.expire_all()
    assert engine.instance(db, t.id).status == Status.COMPLETED
    assert count(db, "signal_started") == 1


BOTH = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="t">
  <bpmn:signal id="Sig_a" name="sig.a"/>
  <bpmn:signal id="Sig_b" name="sig.b"/>
  <bpmn:process id="both" isExecutable="true">
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Fork"/>
    <bpmn:parallelGateway id="Fork"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Fork" targetRef="Wait_a"/>
    <bpmn:sequenceFlow id="F3" sourceRef="Fork" targetRef="Wait_b"/>
    <bpmn:intermediateCatchEvent id="Wait_a"><bpmn:signalEventDefinition signalRef="Sig_a"/></bpmn:intermediateCatchEvent>
    <bpmn:intermediateCatchEvent id="Wait_b"><bpmn:signalEventDefinition signalRef="Sig_b"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F4" sourceRef="Wait_a" targetRef="Got_a"/>
    <bpmn:sequenceFlow id="F5" sourceRef="Wait_b" targetRef="Got_b"/>
    <bpmn:scriptTask id="Got_a"><bpmn:script>got_a = True</bpmn:script></bpmn:scriptTask>
    <bpmn:scriptTask id="Got_b"><bpmn:script>got_b = True</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="F6" sourceRef="Got_a" targetRef="Join"/>
    <bpmn:sequenceFlow id="F7" sourceRef="Got_b" targetRef="Join"/>
    <bpmn:parallelGateway id="Join"/>
    <bpmn:sequenceFlow id="F8" sourceRef="Join" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>
  </bpmn:process>
</bpmn:definitions>"""
ONLY_A = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="t">
  <bpmn:signal id="Sig_a" name="sig.a"/>
  <bpmn:process id="only_a" isExecutable="true">
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Wait_a"/>
    <bpmn:intermediateCatchEvent id="Wait_a"><bpmn:signalEventDefinition signalRef="Sig_a"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Wait_a" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>
  </bpmn:process>
</bpmn:definitions>"""
A = "received signal 'sig.a'"
B = "received signal 'sig.b'"


@pytest.mark.parametrize("write", [True, False], ids=["writer", "deferred"])
@pytest.mark.parametrize("signals", [("sig.a", "sig.b"), ("sig.a", "sig.a")],
                         ids=["different", "same"])
def test_concurrent_signals_reach_each_waiting_catch_exactly_once(engine, db, engine_sessions,
                                                                  signals, write):
    both = engine.deploy(db, BOTH)
    only_a = engine.deploy(db, ONLY_A)
    waiting_both = [engine.start(db, both, StartRequest({})).id for _ in range(2)]
    waiting_a = [engine.start(db, only_a, StartRequest({})).id for _ in range(2)]
    db.commit()

    def throw(i: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        retrying(engine_sessions, lambda s: engine.throw_signal(s, signals[i]), write=write)

    assert race(2, throw) == ["ok", "ok"]
    db.expire_all()
    for instance_id in waiting_a:  # one reception, however many "sig.a" were thrown
        assert engine.instance(db, instance_id).status == Status.COMPLETED
        assert received(db, instance_id) == [A]
    for instance_id in waiting_both:
        inst = engine.instance(db, instance_id)
        if signals == ("sig.a", "sig.b"):  # neither lost although both came at once
            assert inst.status == Status.COMPLETED
            assert received(db, instance_id) == [A, B]
            data = engine.instance_data(db, instance_id)
            assert data["got_a"] is True and data["got_b"] is True
        else:
            assert inst.status == Status.WAITING
            assert received(db, instance_id) == [A]
            assert [w["event"] for w in inst.waiting] == ["sig.b"]
    if signals == ("sig.a", "sig.a"):
        engine.throw_signal(db, "sig.b")
        db.commit()
        for instance_id in waiting_both:
            assert engine.instance(db, instance_id).status == Status.COMPLETED
            assert received(db, instance_id) == [A, B]
