"""Signal start events (``engine.correlation``): a signal thrown by any running instance, or
broadcast from outside one (``Engine.throw_signal``), starts one instance of every active
definition with a signal start event for it — once per broadcast, also when two workers
deliver the same broadcast at once."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.errors import EngineError
from engine.ports import StartRequest
from engine.runtime import Engine
from engine.store import ProcessDefinition, ProcessHistory, ProcessInstance, Status

from .support import bpmn, deal


def restarted(engine: Engine, db: Any) -> Engine:
    """Commit and go on with a brand-new engine: every instance is restored from its row."""
    db.commit()
    db.expire_all()
    return Engine(registry=engine.registry, assigner=engine.assigner, clock=engine.clock)


def instances_of(db: Any, key: str) -> list[ProcessInstance]:
    return list(db.scalars(select(ProcessInstance).join(ProcessDefinition)
                           .where(ProcessDefinition.key == key).order_by(ProcessInstance.id)))


def notes(db: Any, instance_id: int, event: str) -> list[str]:
    return list(db.scalars(select(ProcessHistory.message)
                           .where(ProcessHistory.instance_id == instance_id,
                                  ProcessHistory.event == event)))


def publish(engine: Engine, db: Any, inst: Any) -> None:
    [task] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, task.id, 10, {})


def test_a_thrown_signal_starts_the_listening_definition_with_the_thrown_data(engine, db):
    listener = engine.deploy(db, bpmn("signal_started.bpmn"))
    assert listener.signal_starts == ["prices.updated"] and not listener.manual_start
    assert listener.triggers == []  # not a CRM event: the dispatcher never starts it
    thrower = engine.deploy(db, bpmn("signal_thrower.bpmn"))
    t = engine.start(db, thrower, StartRequest(deal(amount=5) | {"halt": False}, "deal", 9))
    engine = restarted(engine, db)
    assert instances_of(db, "signal_started") == []  # nothing before the throw
    publish(engine, db, t)
    [started] = instances_of(db, "signal_started")
    assert (started.entity_type, started.entity_id) == ("deal", 9)
    assert started.status == Status.WAITING  # at its manual task
    assert notes(db, t.id, "signal_started") == [
        f"signal 'prices.updated' started instance {started.id}"]
    assert notes(db, started.id, "started")[0].endswith("by signal 'prices.updated'")
    # save/restore in the middle: the started instance goes on from its row
    engine = restarted(engine, db)
    publish(engine, db, started)
    db.commit()
    data = engine.instance_data(db, started.id)
    assert engine.instance(db, started.id).status == Status.COMPLETED
    assert data["noted"] is True and data["halt"] is False
    assert data["deal"]["amount"] == 5  # the thrower's data
    assert data["signal"] == {"name": "prices.updated", "from_instance": t.id}


def test_each_broadcast_starts_one_instance_and_only_active_versions_listen(engine, db):
    v1 = engine.deploy(db, bpmn("signal_started.bpmn"))
    engine.deploy(db, bpmn("signal_started.bpmn"))  # v2 active, v1 not any more
    thrower = engine.deploy(db, bpmn("signal_thrower.bpmn"))
    for _ in range(2):
        t = engine.start(db, thrower, StartRequest({"halt": False}, "deal", 9))
        publish(engine, db, t)
    started = instances_of(db, "signal_started")
    assert len(started) == 2
    assert {s.definition_id for s in started} == {v1.id + 1}
    # the halt signal has no listener: nothing more starts
    t = engine.start(db, thrower, StartRequest({"halt": True}, "deal", 9))
    publish(engine, db, t)
    assert len(instances_of(db, "signal_started")) == 2
    assert notes(db, t.id, "signal_started") == []
    engine.deactivate(db, "signal_started")
    t = engine.start(db, thrower, StartRequest({"halt": False}, "deal", 9))
    publish(engine, db, t)
    assert len(instances_of(db, "signal_started")) == 2


SIGNAL_END = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="t">
  <bpmn:signal id="Sig_prices" name="prices.updated"/>
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="Start_1">{start}</bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Mark"/>
    <bpmn:scriptTask id="Mark"><bpmn:script>marked = True</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="F2" sourceRef="Mark" targetRef="Prices"/>
    <bpmn:endEvent id="Prices"><bpmn:signalEventDefinition signalRef="Sig_prices"/></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""
ON_SIGNAL = '<bpmn:signalEventDefinition signalRef="Sig_prices"/>'


def test_a_signal_end_event_starts_listeners_but_never_its_own_process(engine, db):
    listener = engine.deploy(db, bpmn("signal_started.bpmn"))
    # starts on the signal and throws it again at its end: the chain stops at itself
    looping = engine.deploy(db, SIGNAL_END.format(key="relay", start=ON_SIGNAL))
    assert looping.signal_starts == ["prices.updated"]
    ender = engine.deploy(db, SIGNAL_END.format(key="ender", start=""))
    e = engine.start(db, ender, StartRequest({"x": 1}))
    assert e.status == Status.COMPLETED
    [relay] = instances_of(db, "relay")
    assert relay.status == Status.COMPLETED
    assert engine.instance_data(db, relay.id)["signal"]["from_instance"] == e.id
    # the ender's signal and the relay's own re-throw each start one listener instance
    started = instances_of(db, "signal_started")
    assert [engine.instance_data(db, s.id)["signal"]["from_instance"] for s in started] == [
        e.id, relay.id]
    assert all(s.definition_id == listener.id for s in started)
    assert len(instances_of(db, "ender")) == 1


def test_a_signal_started_definition_cannot_be_started_by_hand_or_by_another_signal(engine,
                                                                                   db):
    d = engine.deploy(db, bpmn("signal_started.bpmn"))
    with pytest.raises(EngineError, match="has no manual start; it starts on "
                                          "signal 'prices.updated'"):
        engine.start(db, d, StartRequest({}))
    with pytest.raises(EngineError, match="does not start on signal 'other'"):
        engine.start(db, d, StartRequest({}, signal="other"))
    inst = engine.start(db, d, StartRequest({"a": 1}, signal="prices.updated"))
    assert inst.status == Status.WAITING


def test_throw_signal_from_outside_starts_once_per_event_and_refuses_bad_input(engine, db):
    engine.deploy(db, bpmn("signal_started.bpmn"))
    waiter = engine.deploy(db, bpmn("signal_waiter.bpmn"))
    w = engine.start(db, waiter, StartRequest(deal(), "deal", 7))
    moved, started = engine.throw_signal(db, "prices.updated", {"list": "spring"},
                                         entity_type="deal", entity_id=3, event_id=501)
    assert moved == [w.id] and len(started) == 1
    data = engine.instance_data(db, started[0])
    assert data["list"] == "spring"
    assert data["signal"] == {"name": "prices.updated", "from_instance": None}
    assert engine.throw_signal(db, "prices.updated", {}, event_id=501) == ([], [])
    assert len(engine.throw_signal(db, "prices.updated", {}, event_id=502)[1]) == 1
    assert len(engine.throw_signal(db, "prices.updated")[1]) == 1  # no event id: a new one
    assert engine.throw_signal(db, "nobody.listens") == ([], [])
    with pytest.raises(EngineError, match="a signal needs a name"):
        engine.throw_signal(db, "  ")
    with pytest.raises(EngineError, match="must be a JSON object"):
        engine.throw_signal(db, "prices.updated", [1, 2])  # type: ignore[arg-type]
    assert len(instances_of(db, "signal_started")) == 3


@pytest.mark.parametrize("change, element, message", [
    ((' isExecutable="true">', ' isExecutable="true"><bpmn:startEvent id="Again">'
      '<bpmn:signalEventDefinition signalRef="Sig_prices"/></bpmn:startEvent>'
      '<bpmn:sequenceFlow id="FA" sourceRef="Again" targetRef="Note"/>'),
     "On_prices", "two start events react to signal 'prices.updated'"),  # the second
    (('signalRef="Sig_prices"', ''), "On_prices",
     "the signal event On_prices refers to no bpmn:signal (signalRef)"),
    (('signalRef="Sig_prices"', 'signalRef="Nope"'), "On_prices",
     "the signal event On_prices refers to bpmn:signal 'Nope', which the file does not define"),
    (('name="prices.updated"', ''), "On_prices", "bpmn:signal Sig_prices has no name"),
])
def test_bad_signal_start_events_are_refused_naming_the_element(engine, change, element,
                                                                message):
    errors = engine.validate(bpmn("signal_started.bpmn").replace(*change))
    assert (element, message) in [(e.element_id, e.message) for e in errors]


def test_a_signal_start_inside_an_embedded_sub_process_is_refused(engine):
    xml = bpmn("events_in_subprocess.bpmn").replace(
        '<bpmn:startEvent id="Work_start"/>',
        '<bpmn:startEvent id="Work_start"><bpmn:signalEventDefinition signalRef="Sig_prices"/>'
        '</bpmn:startEvent>')
    errors = [(e.element_id, e.message) for e in engine.validate(xml)]
    assert ("Work_start", "element Work_start of type bpmn:startEvent with "
                          "bpmn:signalEventDefinition is not supported") in errors
