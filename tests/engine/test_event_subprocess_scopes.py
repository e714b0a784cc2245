"""Event sub-processes drawn inside an embedded sub-process (``engine.event_scopes``): they
trigger only while that sub-process runs; interrupting ones end the sub-process (the process
goes on after it), non-interrupting ones run beside it — through save/restore in between."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.errors import EngineError
from engine.ports import StartRequest
from engine.runtime import Engine
from engine.store import ProcessHistory, Status, TaskStatus

from .support import bpmn, deal


def restarted(engine: Engine, db: Any) -> Engine:
    """Commit and go on with a brand-new engine: every instance is restored from its row."""
    db.commit()
    db.expire_all()
    return Engine(registry=engine.registry, assigner=engine.assigner, clock=engine.clock)


def elements(db: Any, instance_id: int) -> list[str]:
    return [e for e in db.scalars(select(ProcessHistory.element_id).where(
        ProcessHistory.instance_id == instance_id, ProcessHistory.event == "left")) if e]


@pytest.fixture()
def flaky(registry):
    from engine.ports import ParamSpec

    from .support import FakeOperation
    op = FakeOperation("test.flaky", (ParamSpec("amount", "decimal"),), result={"crm_ok": True})
    registry.register(op)
    return op


def open_tasks(engine: Engine, db: Any, instance_id: int) -> list[str]:
    return sorted(t.element_id for t in engine.tasks(db, instance_id=instance_id))


def test_a_message_interrupts_only_the_sub_process_and_the_process_goes_on(engine, db, flaky):
    d = engine.deploy(db, bpmn("events_in_subprocess.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(amount="10"), "deal", 7))
    waits = {(w["element"], w["event"]) for w in inst.waiting}
    assert {("Cancel_start", "deal.cancelled"), ("Prices_start", "prices.updated")} <= waits
    assert open_tasks(engine, db, inst.id) == ["Do"]
    engine = restarted(engine, db)
    engine.send_message(db, inst.id, "deal.cancelled", {"why": "client left"})
    engine = restarted(engine, db)
    inst = engine.instance(db, inst.id)
    assert inst.status == Status.WAITING
    assert open_tasks(engine, db, inst.id) == ["After"]  # the process went on after Work
    [do] = [t for t in engine.tasks(db, instance_id=inst.id, statuses=None)
            if t.element_id == "Do"]
    assert do.status == TaskStatus.CANCELLED  # the rest of the sub-process was interrupted
    assert not {w["element"] for w in inst.waiting} & {"Cancel_start", "Prices_start"}
    data = engine.instance_data(db, inst.id)
    assert data["cancelled"] is True and data["why"] == "client left"
    # the sub-process is over: its events no longer concern the instance
    with pytest.raises(EngineError, match="not waiting for 'deal.cancelled'"):
        engine.send_message(db, inst.id, "deal.cancelled", {})
    [after] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, after.id, 10, {})
    assert engine.instance(db, inst.id).status == Status.COMPLETED


def test_a_signal_runs_the_non_interrupting_one_beside_the_sub_process(engine, db, flaky):
    d = engine.deploy(db, bpmn("events_in_subprocess.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(amount="10"), "deal", 7))
    engine = restarted(engine, db)
    moved, started = engine.throw_signal(db, "prices.updated")
    assert (moved, started) == ([inst.id], [])
    engine = restarted(engine, db)
    inst = engine.instance(db, inst.id)
    assert open_tasks(engine, db, inst.id) == ["Do"]  # not interrupted
    assert ("Cancel_start", "deal.cancelled") in {(w["element"], w["event"])
                                                  for w in inst.waiting}
    assert "Repriced" in elements(db, inst.id)
    [do] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, do.id, 10, {})
    engine = restarted(engine, db)
    inst = engine.instance(db, inst.id)
    assert open_tasks(engine, db, inst.id) == ["After"]
    assert inst.waiting == [] or not any(w["type"].startswith(("Message", "Signal"))
                                         for w in inst.waiting)
    # after the sub-process the signal concerns the instance no more
    assert engine.throw_signal(db, "prices.updated") == ([], [])
    [after] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, after.id, 10, {})
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    assert engine.instance_data(db, inst.id)["repriced"] is True


def test_a_signal_before_the_sub_process_runs_does_not_trigger_it(engine, db, flaky):
    d = engine.deploy(db, bpmn("events_in_subprocess.bpmn").replace(
        '<bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Work"/>',
        '<bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Before"/>'
        '<bpmn:manualTask id="Before" marshrut:assignment="user" '
        'marshrut:assignee="head@test.local"/>'
        '<bpmn:sequenceFlow id="F0" sourceRef="Before" targetRef="Work"/>'))
    inst = engine.start(db, d, StartRequest(deal(amount="10"), "deal", 7))
    assert not {w["element"] for w in inst.waiting} & {"Cancel_start", "Prices_start"}
    assert engine.throw_signal(db, "prices.updated") == ([], [])
    with pytest.raises(EngineError, match="not waiting for 'deal.cancelled'"):
        engine.send_message(db, inst.id, "deal.cancelled", {})
    engine = restarted(engine, db)
    [before] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, before.id, 10, {})
    assert open_tasks(engine, db, inst.id) == ["Do"]
    assert "Repriced" not in elements(db, inst.id)
    assert "repriced" not in engine.instance_data(db, inst.id)


def test_an_escalation_inside_is_caught_by_the_sub_process_own_event_sub_process(engine, db,
                                                                                  flaky):
    d = engine.deploy(db, bpmn("events_in_subprocess.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7))  # a big deal: escalates
    assert "Big_noted" in elements(db, inst.id)
    assert open_tasks(engine, db, inst.id) == ["Do"]  # non-interrupting
    engine = restarted(engine, db)
    [do] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, do.id, 10, {})
    [after] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, after.id, 10, {})
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    assert engine.instance_data(db, inst.id)["big"] is True


@pytest.mark.parametrize("code, caught", [("not_found", True), ("validation_error", False)])
def test_an_error_inside_is_caught_by_the_sub_process_error_event_sub_process(
        engine, db, flaky, code, caught):
    from engine.errors import ServiceCallError
    flaky.fail_times, flaky.error = 1, ServiceCallError("deal 7 is gone", retryable=False,
                                                        error_code=code)
    d = engine.deploy(db, bpmn("events_in_subprocess.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(amount="10"), "deal", 7))
    if not caught:  # another code: nothing catches it, an incident as before
        assert (inst.status, inst.incident_element_id) == (Status.INCIDENT, "Call")
        return
    assert (inst.status, inst.incident_element_id) == (Status.WAITING, None)
    # interrupting: the sub-process ends with the handler, the process goes on after it
    assert open_tasks(engine, db, inst.id) == ["After"]
    engine = restarted(engine, db)
    [after] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, after.id, 10, {})
    data = engine.instance_data(db, inst.id)
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    assert data["handled"] == "not_found" and "crm_ok" not in data


NESTED_TWICE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="t">
  <bpmn:message id="M1" name="a.b"/>
  <bpmn:process id="nested_twice" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="E"/>
    <bpmn:endEvent id="E"/>
    <bpmn:subProcess id="Outer_handler" triggeredByEvent="true">
      <bpmn:startEvent id="OS"><bpmn:messageEventDefinition messageRef="M1"/></bpmn:startEvent>
      <bpmn:sequenceFlow id="O1" sourceRef="OS" targetRef="OE"/>
      <bpmn:endEvent id="OE"/>
      <bpmn:subProcess id="Inner_handler" triggeredByEvent="true">
        <bpmn:startEvent id="IS"><bpmn:messageEventDefinition messageRef="M1"/></bpmn:startEvent>
        <bpmn:sequenceFlow id="I1" sourceRef="IS" targetRef="IE"/>
        <bpmn:endEvent id="IE"/>
      </bpmn:subProcess>
    </bpmn:subProcess>
  </bpmn:process>
</bpmn:definitions>"""


def test_deploy_accepts_it_inside_a_sub_process_and_refuses_it_inside_an_event_one(engine, flaky,
                                                                                   db):
    d = engine.deploy(db, bpmn("events_in_subprocess.bpmn"))
    assert d.catches == ["deal.cancelled"]
    errors = engine.validate(NESTED_TWICE)
    assert [(e.element_id, e.message) for e in errors] == [
        ("Inner_handler", "event sub-process Inner_handler cannot be drawn inside another "
                          "event sub-process; draw it in the process or in an embedded "
                          "sub-process")]
    no_start = bpmn("events_in_subprocess.bpmn").replace(
        '<bpmn:startEvent id="Big_start" isInterrupting="false"><bpmn:escalationEventDefinition '
        'escalationRef="Esc_big"/></bpmn:startEvent>', '<bpmn:startEvent id="Big_start"/>')
    assert [(e.element_id, e.message) for e in engine.validate(no_start)] == [
        ("Big_start", "the start event Big_start of an event sub-process needs a message, "
                      "timer, error, escalation or signal definition")]


def test_what_a_non_interrupting_one_writes_reaches_the_rest_of_the_process(engine, db):
    """At the process level too: the handler's values are not lost with its branch."""
    xml = bpmn("signal_waiter.bpmn").replace('<bpmn:startEvent id="Halt_start">',
                                             '<bpmn:startEvent id="Halt_start" '
                                             'isInterrupting="false">')
    inst = engine.start(db, engine.deploy(db, xml), StartRequest(deal(), "deal", 7))
    engine = restarted(engine, db)
    assert engine.throw_signal(db, "sales.halted")[0] == [inst.id]
    inst = engine.instance(db, inst.id)
    assert inst.status == Status.WAITING  # not interrupted: still waits for the prices
    engine = restarted(engine, db)
    assert engine.throw_signal(db, "prices.updated")[0] == [inst.id]
    data = engine.instance_data(db, inst.id)
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    assert data["halted"] is True and data["repriced"] is True


ERROR_END = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="D" targetNamespace="t">
  <bpmn:error id="Err" name="Bad" errorCode="bad"/>
  <bpmn:process id="err_end" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Work"/>
    <bpmn:subProcess id="Work">
      <bpmn:startEvent id="WS"/>
      <bpmn:sequenceFlow id="W1" sourceRef="WS" targetRef="Fork"/>
      <bpmn:parallelGateway id="Fork"/>
      <bpmn:sequenceFlow id="W2" sourceRef="Fork" targetRef="Do"/>
      <bpmn:sequenceFlow id="W3" sourceRef="Fork" targetRef="Fail"/>
      <bpmn:manualTask id="Do" marshrut:assignment="user" marshrut:assignee="head@test.local"/>
      <bpmn:sequenceFlow id="W4" sourceRef="Do" targetRef="WE"/>
      <bpmn:endEvent id="WE"/>
      <bpmn:endEvent id="Fail"><bpmn:errorEventDefinition errorRef="Err"/></bpmn:endEvent>
      <bpmn:subProcess id="Handler" triggeredByEvent="true">
        <bpmn:startEvent id="HS"><bpmn:errorEventDefinition errorRef="Err"/></bpmn:startEvent>
        <bpmn:sequenceFlow id="H1" sourceRef="HS" targetRef="Fix"/>
        <bpmn:scriptTask id="Fix"><bpmn:script>fixed = True</bpmn:script></bpmn:scriptTask>
        <bpmn:sequenceFlow id="H2" sourceRef="Fix" targetRef="HE"/>
        <bpmn:endEvent id="HE"/>
      </bpmn:subProcess>
    </bpmn:subProcess>
    <bpmn:boundaryEvent id="Outer" attachedToRef="Work"><bpmn:errorEventDefinition errorRef="Err"/></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F4" sourceRef="Outer" targetRef="Outer_note"/>
    <bpmn:scriptTask id="Outer_note"><bpmn:script>outer = True</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="F5" sourceRef="Outer_note" targetRef="Outer_end"/>
    <bpmn:endEvent id="Outer_end"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Work" targetRef="After"/>
    <bpmn:manualTask id="After" marshrut:assignment="user" marshrut:assignee="head@test.local"/>
    <bpmn:sequenceFlow id="F3" sourceRef="After" targetRef="E"/>
    <bpmn:endEvent id="E"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_an_error_end_event_inside_is_caught_by_its_own_handler_before_a_boundary(engine, db):
    d = engine.deploy(db, ERROR_END)
    inst = engine.start(db, d, StartRequest({}))
    assert inst.status == Status.WAITING
    assert open_tasks(engine, db, inst.id) == ["After"]  # Work ended with its handler
    engine = restarted(engine, db)
    [after] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, after.id, 10, {})
    data = engine.instance_data(db, inst.id)
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    assert data["fixed"] is True and "outer" not in data  # the innermost scope caught it
    # without the inner handler the boundary on the sub-process catches it, as before
    outer_only = ERROR_END[:ERROR_END.index('      <bpmn:subProcess id="Handler"')] + \
        ERROR_END[ERROR_END.index('    </bpmn:subProcess>\n    <bpmn:boundaryEvent'):]
    d2 = engine.deploy(db, outer_only)
    inst = engine.start(db, d2, StartRequest({}))
    assert engine.instance(db, inst.id).status == Status.COMPLETED
    data = engine.instance_data(db, inst.id)
    assert data["outer"] is True and "fixed" not in data
