"""Signals are broadcast across instances (``engine.correlation``): a signal one instance
throws reaches the waiting signal catches and signal-started event sub-processes of every
other running instance — of any record and process — also after a restart of the engine."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.ports import StartRequest
from engine.runtime import Engine
from engine.store import ProcessHistory, Status

from .support import bpmn, deal


def restarted(engine: Engine, db: Any) -> Engine:
    """Commit and go on with a brand-new engine (a process restart): no cached spec or
    object survives; every instance is restored from its row."""
    db.commit()
    db.expire_all()
    return Engine(registry=engine.registry, assigner=engine.assigner, clock=engine.clock)


def notes(db: Any, instance_id: int, event: str) -> list[str]:
    return list(db.scalars(select(ProcessHistory.message)
                           .where(ProcessHistory.instance_id == instance_id,
                                  ProcessHistory.event == event)))


def start_all(engine: Engine, db: Any, halt: bool = False) -> tuple[Any, Any, Any, Any]:
    waiter = engine.deploy(db, bpmn("signal_waiter.bpmn"))
    thrower = engine.deploy(db, bpmn("signal_thrower.bpmn"))
    w7 = engine.start(db, waiter, StartRequest(deal(), "deal", 7))
    w8 = engine.start(db, waiter, StartRequest(deal(), "deal", 8))
    w_contact = engine.start(db, waiter, StartRequest({}, "contact", 3))
    t = engine.start(db, thrower, StartRequest({"halt": halt}, "deal", 9))
    for inst in (w7, w8, w_contact):
        waits = {(w["element"], w["event"], w["type"]) for w in inst.waiting}
        assert ("Wait_prices", "prices.updated", "SignalEventDefinition") in waits
        assert ("Halt_start", "sales.halted", "SignalEventDefinition") in waits
    return w7, w8, w_contact, t


def test_a_thrown_signal_reaches_the_waiting_instances_of_every_record(engine, db):
    w7, w8, w_contact, t = start_all(engine, db)
    ids = [w7.id, w8.id, w_contact.id]
    engine = restarted(engine, db)
    [publish] = engine.tasks(db, instance_id=t.id)
    engine.complete(db, publish.id, 10, {})
    db.commit()
    db.expire_all()
    assert engine.instance(db, t.id).status == Status.COMPLETED
    for instance_id in ids:
        assert engine.instance(db, instance_id).status == Status.COMPLETED
        data = engine.instance_data(db, instance_id)
        assert data["repriced"] is True and "halted" not in data
        assert data["signal"] == {"name": "prices.updated", "from_instance": t.id}
        assert notes(db, instance_id, "signal") == [
            f"received signal 'prices.updated' from instance {t.id}"]
    assert notes(db, t.id, "signal_sent") == [
        f"signal 'prices.updated' reached instances {', '.join(map(str, ids))}"]


def test_a_signal_starts_the_event_sub_processes_of_other_instances(engine, db):
    w7, w8, w_contact, t = start_all(engine, db, halt=True)
    engine = restarted(engine, db)
    [publish] = engine.tasks(db, instance_id=t.id)
    engine.complete(db, publish.id, 10, {})
    db.commit()
    db.expire_all()
    for inst in (w7, w8, w_contact):
        assert engine.instance(db, inst.id).status == Status.COMPLETED  # interrupting
        data = engine.instance_data(db, inst.id)
        assert data["halted"] is True and "repriced" not in data


def test_a_signal_nobody_waits_for_is_noted_and_finished_instances_are_left_alone(engine,
                                                                                db):
    thrower = engine.deploy(db, bpmn("signal_thrower.bpmn"))
    t = engine.start(db, thrower, StartRequest({"halt": False}, "deal", 9))
    [publish] = engine.tasks(db, instance_id=t.id)
    engine.complete(db, publish.id, 10, {})
    assert notes(db, t.id, "signal_sent") == [
        "signal 'prices.updated': no other instance waited for it"]
    # a second signal after the waiters are done: nothing moves twice
    waiter = engine.deploy(db, bpmn("signal_waiter.bpmn"))
    w = engine.start(db, waiter, StartRequest(deal(), "deal", 7))
    t2 = engine.start(db, thrower, StartRequest({"halt": False}, "deal", 9))
    [publish] = engine.tasks(db, instance_id=t2.id)
    engine.complete(db, publish.id, 10, {})
    assert engine.instance(db, w.id).status == Status.COMPLETED
    t3 = engine.start(db, thrower, StartRequest({"halt": False}, "deal", 9))
    [publish] = engine.tasks(db, instance_id=t3.id)
    engine.complete(db, publish.id, 10, {})
    assert notes(db, t3.id, "signal_sent") == [
        "signal 'prices.updated': no other instance waited for it"]
    assert notes(db, w.id, "signal") == [f"received signal 'prices.updated' from instance "
                                         f"{t2.id}"]


SELF_CATCHING = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="t">
  <bpmn:signal id="Sig_prices" name="prices.updated"/>
  <bpmn:process id="self_catching" isExecutable="true">
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Fork"/>
    <bpmn:parallelGateway id="Fork"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Fork" targetRef="Own_wait"/>
    <bpmn:sequenceFlow id="F3" sourceRef="Fork" targetRef="Prices"/>
    <bpmn:intermediateCatchEvent id="Own_wait"><bpmn:signalEventDefinition signalRef="Sig_prices"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F4" sourceRef="Own_wait" targetRef="Own"/>
    <bpmn:scriptTask id="Own"><bpmn:script>self_caught = True</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="F5" sourceRef="Own" targetRef="Join"/>
    <bpmn:endEvent id="Prices"><bpmn:signalEventDefinition signalRef="Sig_prices"/></bpmn:endEvent>
    <bpmn:parallelGateway id="Join"/>
    <bpmn:sequenceFlow id="F6" sourceRef="Join" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_a_signal_caught_inside_its_own_instance_reaches_the_others_too(engine, db):
    waiter = engine.deploy(db, bpmn("signal_waiter.bpmn"))
    w = engine.start(db, waiter, StartRequest(deal(), "deal", 7))
    engine = restarted(engine, db)
    d = engine.deploy(db, SELF_CATCHING)  # a signal end event, caught on its own branch
    t = engine.start(db, d, StartRequest({}, "deal", 9))
    assert t.status == Status.COMPLETED
    assert engine.instance_data(db, t.id)["self_caught"] is True
    assert engine.instance(db, w.id).status == Status.COMPLETED
    assert engine.instance_data(db, w.id)["repriced"] is True
    assert notes(db, t.id, "signal_sent") == [f"signal 'prices.updated' reached instance {w.id}"]
