"""BPMN coverage: plain and manual tasks, sub-processes, error boundaries, loops, multi-instance
— each run end to end, with the state committed and reloaded from the database mid-run."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from automation.process_trace import instance_trace
from engine.errors import DefinitionInvalid
from engine.ports import StartRequest
from engine.store import ProcessHistory, Status, TaskStatus

from .support import bpmn, deal


def reload(engine: Any, db: Any) -> None:
    """Commit, forget every cached object and spec: the next call restores from the rows."""
    db.commit()
    engine.serializer._specs.clear()
    db.expire_all()


def events(db: Any, instance_id: int) -> list[tuple[str, str | None]]:
    rows = db.scalars(select(ProcessHistory).where(ProcessHistory.instance_id == instance_id)
                      .order_by(ProcessHistory.id))
    return [(r.event, r.element_id) for r in rows]


def test_plain_task_manual_task_in_a_sub_process_and_a_throw_event(engine, db):
    d = engine.deploy(db, bpmn("plain_manual_sub.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7))
    assert inst.status == Status.WAITING
    [todo] = engine.inbox(db, 11)
    assert (todo.element_id, todo.name, todo.form) == ("Print", "Print the contract", [])
    assert todo.instructions == "Print the contract for Vector supply"
    reload(engine, db)
    engine.complete(db, todo.id, 11, {})
    [approve] = engine.tasks(db, instance_id=inst.id)
    assert approve.element_id == "Approve"
    reload(engine, db)
    engine.complete(db, approve.id, 11, {})
    assert inst.status == Status.COMPLETED
    assert engine.instance_data(db, inst.id)["prepared"] == 1
    left = [e for ev, e in events(db, inst.id) if ev == "left"]
    for element in ("Note", "Mark", "Prep_end", "Prepare", "Signal_done"):
        assert element in left
    assert left.index("Prep_end") < left.index("Prepare") < left.index("Signal_done")
    assert ("completed", "Print") in events(db, inst.id)


@pytest.fixture()
def flaky(registry):
    from engine.ports import ParamSpec

    from .support import FakeOperation
    op = FakeOperation("test.flaky", (ParamSpec("amount", "decimal"),), result={"crm_ok": True})
    registry.register(op)
    return op


def test_error_boundary_on_a_service_task_catches_by_code(engine, db, flaky):
    from engine.errors import ServiceCallError
    flaky.fail_times, flaky.error = 1, ServiceCallError("stage is closed", retryable=False,
                                                        error_code="rejected_by_crm")
    d = engine.deploy(db, bpmn("service_error.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7))
    assert (inst.status, inst.incident_element_id) == (Status.WAITING, None)
    [fix] = engine.tasks(db, instance_id=inst.id)
    assert fix.element_id == "Fix"
    assert ("error_caught", "On_rejected") in events(db, inst.id)
    reload(engine, db)
    engine.complete(db, fix.id, 11, {})
    data = engine.instance_data(db, inst.id)
    assert inst.status == Status.COMPLETED
    assert data["error"] == {"code": "rejected_by_crm", "message": "stage is closed",
                             "element": "Call", "operation": "test.flaky"}
    assert "crm_ok" not in data and len(flaky.calls) == 1


def test_error_boundary_without_a_code_catches_after_the_retries(engine, db, flaky, clock):
    flaky.fail_times = 10  # retryable: attempts first, then the boundary
    d = engine.deploy(db, bpmn("service_error.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7))
    assert inst.incident_retry_at is not None
    reload(engine, db)
    clock.advance(1)
    engine.run_due_retries(db)
    clock.advance(5)
    engine.run_due_retries(db)
    assert len(flaky.calls) == 3
    assert (inst.status, inst.incident_element_id) == (Status.COMPLETED, None)
    assert engine.instance_data(db, inst.id)["failure"] == "service_call_failed"
    assert ("error_caught", "On_any_error") in events(db, inst.id)


def test_success_leaves_the_error_boundaries_unused(engine, db, flaky):
    d = engine.deploy(db, bpmn("service_error.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7))
    assert inst.status == Status.COMPLETED
    assert engine.instance_data(db, inst.id)["crm_ok"] is True
    assert not [e for e in events(db, inst.id) if e[0] == "error_caught"]


def test_without_a_boundary_a_failure_stays_an_incident(engine, db, flaky):
    flaky.fail_times, flaky.retryable = 1, False
    d = engine.deploy(db, bpmn("service_chain.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7))
    assert (inst.status, inst.incident_element_id) == (Status.INCIDENT, "Call")


@pytest.mark.parametrize("amount, fail, path", [
    ("5000000", False, "over_limit"),         # error end event inside the sub-process
    ("100", True, "service_call_failed"),     # a failing service inside the sub-process
    ("100", False, None),                     # booked
])
def test_error_boundary_on_a_sub_process(engine, db, flaky, amount, fail, path):
    flaky.fail_times, flaky.retryable = (1 if fail else 0), False
    d = engine.deploy(db, bpmn("subprocess_error.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(amount), "deal", 7))
    if path is None:
        assert inst.status == Status.COMPLETED
        assert engine.instance_data(db, inst.id)["crm_ok"] is True
        return
    assert (inst.status, inst.incident_element_id) == (Status.WAITING, None)
    [call] = engine.inbox(db, 11)
    assert call.element_id == "Call_client"
    reload(engine, db)
    engine.complete(db, call.id, 11, {})
    assert inst.status == Status.COMPLETED
    left = [e for ev, e in events(db, inst.id) if ev == "left"]
    assert "Book_failed" in left and "Booked" not in left
    if fail:
        assert engine.instance_data(db, inst.id)["error"]["code"] == path


def products_deal() -> dict[str, Any]:
    rows = [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}, {"sku": "C-3", "qty": 5}]
    return deal(products=rows) | {"attempts": 0, "laps": 0}


@pytest.fixture()
def reserve(registry):
    from engine.ports import ParamSpec

    calls: list[str] = []

    class Reserve:
        spec = __import__("engine.ports", fromlist=["OperationSpec"]).OperationSpec(
            name="test.reserve", title="reserve", params=(ParamSpec("sku", "string"),))

        def __call__(self, session, ctx, params, data):
            calls.append(params["sku"])
            return {"reservation": f"R-{params['sku']}"}

    registry.register(Reserve())
    return calls


def test_multi_instance_over_product_rows_and_standard_loops(engine, db, reserve):
    d = engine.deploy(db, bpmn("multi_instance.bpmn"))
    inst = engine.start(db, d, StartRequest(products_deal(), "deal", 7))
    assert reserve == ["A-1", "B-2", "C-3"]  # parallel: one call per row
    seen = []
    for i in range(3):  # sequential: one task at a time, in the rows' order
        [task] = engine.tasks(db, instance_id=inst.id)
        assert instance_trace(db, inst, d.bpmn_xml)["progress"].get("Confirm") == (
            f"{i}/3" if i else None)
        seen.append(task.instructions)
        reload(engine, db)
        engine.complete(db, task.id, 11, {})
    assert seen == ["Confirm A-1", "Confirm B-2", "Confirm C-3"]
    trace = instance_trace(db, inst, d.bpmn_xml)
    assert trace["progress"] == {"Reserve": "3/3", "Confirm": "3/3", "Retry": "×3",
                                 "Capped": "×4"}
    assert inst.status == Status.COMPLETED
    data = engine.instance_data(db, inst.id)
    assert data["reservations"] == ["R-A-1", "R-B-2", "R-C-3"]
    assert data["attempts"] == 3  # the loop condition stopped it
    assert data["laps"] == 4  # loopMaximum stopped it


def test_multi_instance_over_an_empty_list_skips_the_activity(engine, db, reserve):
    d = engine.deploy(db, bpmn("multi_instance.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(products=[]) | {"attempts": 0, "laps": 0},
                                            "deal", 7))
    assert reserve == [] and inst.status == Status.COMPLETED
    assert engine.instance_data(db, inst.id)["reservations"] == []


def test_multi_instance_over_a_missing_list_is_an_incident_naming_the_element(engine, db,
                                                                              reserve):
    d = engine.deploy(db, bpmn("multi_instance.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(products="none"), "deal", 7))
    assert (inst.status, inst.incident_element_id) == (Status.INCIDENT, "Reserve")


def test_signal_escalation_receive_task_and_event_sub_process(engine, db):
    d = engine.deploy(db, bpmn("events_inside.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7))
    [tell] = engine.inbox(db, 10)
    assert tell.element_id == "Tell_head"
    waiting = {(w["element"], w["event"]) for w in inst.waiting}
    assert ("Reply", "client.replied") in waiting
    reload(engine, db)
    engine.send_message(db, inst.id, "client.replied", {"reply": "yes"})
    assert inst.status == Status.WAITING  # the head's to-do is still open
    engine.complete(db, tell.id, 10, {})
    assert inst.status == Status.COMPLETED
    data = engine.instance_data(db, inst.id)
    assert (data["signalled"], data["reply"]) == (True, "yes")
    assert "cancelled" not in data


def test_a_message_starts_the_event_sub_process(engine, db):
    d = engine.deploy(db, bpmn("events_inside.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7))
    assert ("Cancel_start", "deal.cancelled") in {(w["element"], w["event"])
                                                  for w in inst.waiting}
    reload(engine, db)
    [tell] = engine.inbox(db, 10)
    engine.send_message(db, inst.id, "deal.cancelled", {"why": "client left"})
    # interrupting: the open to-do is withdrawn, the waits are gone, the process ends
    assert inst.status == Status.COMPLETED
    assert engine.task(db, tell.id).status == TaskStatus.CANCELLED
    data = engine.instance_data(db, inst.id)
    assert data["cancelled"] is True and data["why"] == "client left"
    assert data["signalled"] is True  # it started from the data where the process stood


@pytest.mark.parametrize("code, caught", [("not_found", True), ("validation_error", False)])
def test_an_error_start_event_sub_process_catches_a_failing_service(engine, db, flaky, code,
                                                                     caught):
    from engine.errors import ServiceCallError
    flaky.fail_times, flaky.error = 1, ServiceCallError("deal 7 is gone", retryable=False,
                                                        error_code=code)
    d = engine.deploy(db, bpmn("error_event_subprocess.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7))
    if not caught:  # another code: nothing catches it, an incident as before
        assert (inst.status, inst.incident_element_id) == (Status.INCIDENT, "Call")
        return
    assert (inst.status, inst.incident_element_id) == (Status.COMPLETED, None)
    assert engine.instance_data(db, inst.id)["handled"] == "not_found"
    assert ("error_caught", "Nf_start") in events(db, inst.id)


def test_crm_events_reach_only_the_instances_of_their_record(engine, db):
    d = engine.deploy(db, bpmn("wait_record.bpmn"))
    assert d.catches == ["*", "activity.created"]
    mine = engine.start(db, d, StartRequest(deal(stage="new"), "deal", 7, event_id=1,
                                            message="deal.created"))
    other = engine.start(db, d, StartRequest(deal(stage="new") | {"deal": {"id": 8,
                                                                           "stage": "new"}},
                                             "deal", 8, event_id=2, message="deal.created"))
    reload(engine, db)
    assert engine.correlator.catching(db) == {"*", "activity.created"}
    # a reply on deal 7: only its instance takes it
    assert engine.correlator.deliver(db, "activity.created", "deal", 7,
                                     {"activity": {"kind": "email"}}) == [mine.id]
    assert ("left", "Replied") in events(db, mine.id)
    assert {w["element"] for w in mine.waiting} == {"Wait_won"}
    assert {w["element"] for w in other.waiting} == {"Wait_reply", "Wait_won"}
    # the deal moves, but not to the stage waited for: nothing happens
    reload(engine, db)
    assert engine.correlator.deliver(db, "deal.updated", "deal", 7,
                                     {"deal": {"id": 7, "stage": "proposal"}}) == []
    # its own write never reaches it
    assert engine.correlator.deliver(db, "deal.updated", "deal", 7,
                                     {"deal": {"id": 7, "stage": "won"}},
                                     skip_instance=mine.id) == []
    assert engine.correlator.deliver(db, "deal.updated", "deal", 7,
                                     {"deal": {"id": 7, "stage": "won"}}) == [mine.id]
    assert mine.status == Status.COMPLETED and other.status == Status.WAITING
    final = engine.instance_data(db, mine.id)
    assert (final["replied"], final["deal"]["stage"], final["activity"]) == (
        True, "won", {"kind": "email"})
    assert ("condition_met", "Wait_won") in events(db, mine.id)
    assert engine.correlator.deliver(db, "deal.updated", "deal", 9, {}) == []


def test_a_send_task_reaches_the_receive_task_of_the_same_record_only(engine, db):
    waiter = engine.deploy(db, bpmn("await_offer.bpmn"))
    sender = engine.deploy(db, bpmn("send_offer.bpmn"))
    w7 = engine.start(db, waiter, StartRequest({}, "deal", 7))
    w8 = engine.start(db, waiter, StartRequest({}, "deal", 8))
    reload(engine, db)
    s7 = engine.start(db, sender, StartRequest({}, "deal", 7))
    assert s7.status == Status.COMPLETED
    assert (w7.status, w8.status) == (Status.COMPLETED, Status.WAITING)
    assert engine.instance_data(db, w7.id)["got"] == 5
    assert engine.instance_data(db, w7.id)["message"]["from_instance"] == s7.id
    assert ("message_sent", None) in events(db, s7.id)
    lonely = engine.start(db, sender, StartRequest({}, "deal", 9))
    notes = [h.message for h in engine.history(db, lonely.id) if h.event == "message_sent"]
    assert notes == ["sent 'offer.approved'; no instance of the record waited for it"]


def test_call_activity_by_key_latest_or_pinned_over_contacts(engine, db):
    greet_v1 = bpmn("greet_contact.bpmn")
    engine.deploy(db, greet_v1)
    engine.deploy(db, greet_v1.replace('"v1: hello "', '"v2: hello "'))
    contacts = [{"name": "Anna"}, {"name": "Boris"}]
    latest = engine.deploy(db, bpmn("call_parent.bpmn"))
    inst = engine.start(db, latest, StartRequest(deal(contacts=[]) | {"contacts": contacts},
                                                 "deal", 7))
    calls = engine.tasks(db, instance_id=inst.id)
    assert [t.element_id for t in calls] == ["Call_them", "Call_them"]
    reload(engine, db)
    for t in calls:
        engine.complete(db, t.id, 11, {})
    assert inst.status == Status.COMPLETED
    assert engine.instance_data(db, inst.id)["greetings"] == ["v2: hello Anna",
                                                             "v2: hello Boris"]
    pinned = engine.deploy(db, bpmn("call_parent.bpmn").replace(
        'calledElement="greet_contact"', 'calledElement="greet_contact" marshrut:version="1"'))
    inst = engine.start(db, pinned, StartRequest(deal() | {"contacts": contacts[:1]}, "deal", 7))
    [t] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, t.id, 11, {})
    assert engine.instance_data(db, inst.id)["greetings"] == ["v1: hello Anna"]


@pytest.mark.parametrize("change, message", [
    (('calledElement="greet_contact"', 'calledElement="nobody"'),
     "calls process 'nobody', which is not deployed"),
    (('calledElement="greet_contact"', 'calledElement="greet_contact" marshrut:version="9"'),
     "calls version 9 of process 'greet_contact', which is not deployed"),
    (('calledElement="greet_contact"', 'calledElement="greet_contact" marshrut:version="x"'),
     "must be a version number, not 'x'"),
    (('calledElement="greet_contact"', 'calledElement="call_parent"'), "calls its own process"),
])
def test_bad_call_activities_are_refused(engine, db, change, message):
    engine.deploy(db, bpmn("greet_contact.bpmn"))
    with pytest.raises(DefinitionInvalid) as err:
        engine.deploy(db, bpmn("call_parent.bpmn").replace(*change))
    assert any(e.element_id == "Each_contact" and message in e.message
               for e in err.value.errors), err.value.errors
    assert engine.validate(bpmn("call_parent.bpmn"))[0].message.startswith(
        "call activities are checked against the deployed processes")


def test_timer_boundary_on_a_sub_process_and_message_boundary_on_a_task(engine, db, clock,
                                                                        engine_sessions):
    from engine.scheduler import TimerRunner
    runner = TimerRunner(engine, engine_sessions, worker_id="test")
    d = engine.deploy(db, bpmn("boundaries.bpmn"))
    late = engine.start(db, d, StartRequest(deal(), "deal", 7))
    on_time = engine.start(db, d, StartRequest(deal(), "deal", 8))
    assert {w["element"] for w in late.waiting} == {"Too_late"}
    [do] = engine.tasks(db, instance_id=on_time.id)
    engine.complete(db, do.id, 11, {})  # leaving the sub-process cancels its timer
    db.commit()
    clock.advance(24 * 3600)
    runner.run_due()
    db.expire_all()
    assert late.status == Status.COMPLETED
    assert ("left", "Too_late") in events(db, late.id)
    [withdrawn] = engine.tasks(db, instance_id=late.id, statuses=None)
    assert withdrawn.status == TaskStatus.CANCELLED
    # the other waits on Ask; the deal is lost: the boundary message interrupts the task
    assert on_time.status == Status.WAITING
    assert engine.correlator.deliver(db, "deal.lost", "deal", 8, {}) == [on_time.id]
    assert on_time.status == Status.COMPLETED
    assert ("left", "Gone") in events(db, on_time.id)
    assert [t.status for t in engine.tasks(db, instance_id=on_time.id, statuses=None)] == [
        TaskStatus.COMPLETED, TaskStatus.CANCELLED]


CALLEE = """<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  id="D" targetNamespace="t"><bpmn:error id="E1" errorCode="no_stock"/>
  <bpmn:process id="reserve_stock" isExecutable="true">
  <bpmn:startEvent id="S"/><bpmn:sequenceFlow id="F" sourceRef="S" targetRef="X"/>
  <bpmn:endEvent id="X"><bpmn:errorEventDefinition errorRef="E1"/></bpmn:endEvent>
  </bpmn:process></bpmn:definitions>"""
CALLER = """<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  id="D2" targetNamespace="t"><bpmn:error id="E1" errorCode="no_stock"/>
  <bpmn:process id="order" isExecutable="true">
  <bpmn:startEvent id="S"/><bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Reserve"/>
  <bpmn:callActivity id="Reserve" calledElement="reserve_stock"/>
  <bpmn:boundaryEvent id="No_stock" attachedToRef="Reserve">
    <bpmn:errorEventDefinition errorRef="E1"/></bpmn:boundaryEvent>
  <bpmn:sequenceFlow id="F2" sourceRef="Reserve" targetRef="Done"/><bpmn:endEvent id="Done"/>
  <bpmn:sequenceFlow id="F3" sourceRef="No_stock" targetRef="Backorder"/>
  <bpmn:endEvent id="Backorder"/></bpmn:process></bpmn:definitions>"""


def test_an_error_end_event_in_a_called_process_is_caught_on_the_call_activity(engine, db):
    engine.deploy(db, CALLEE)
    inst = engine.start(db, engine.deploy(db, CALLER), StartRequest({}))
    assert inst.status == Status.COMPLETED
    left = [e for ev, e in events(db, inst.id) if ev == "left"]
    assert "Backorder" in left and "Done" not in left


def test_concurrent_deliveries_of_one_event_move_the_instance_once(engine, db, sessions):
    import threading
    d = engine.deploy(db, bpmn("await_offer.bpmn"))
    inst = engine.start(db, d, StartRequest({}, "deal", 7))
    other = engine.start(db, d, StartRequest({}, "deal", 8))
    db.commit()
    barrier = threading.Barrier(2)
    moved: list[Any] = []
    payload = {"message": {"data": {"discount": 1}}}

    def deliver() -> None:
        s = sessions()
        try:
            s.execute(select(ProcessHistory.id).limit(1)).all()  # both read before either writes
            barrier.wait()
            moved.append(engine.correlator.deliver(s, "offer.approved", "deal", 7, payload))
            s.commit()
        except Exception as exc:  # a lost race may surface as a conflict on commit
            s.rollback()
            moved.append(type(exc).__name__)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(moved) == 2 and [m for m in moved if m == [inst.id]] == [[inst.id]], moved
    check = sessions()
    rows = check.scalars(select(ProcessHistory).where(ProcessHistory.instance_id == inst.id,
                                                     ProcessHistory.event == "message")).all()
    assert len(rows) == 1  # delivered once
    assert engine.instance(check, inst.id).status == Status.COMPLETED
    assert engine.instance(check, other.id).status == Status.WAITING


def test_a_timer_inside_a_sub_process_and_a_conditional_boundary_event(engine, db, clock,
                                                                        engine_sessions):
    from engine.scheduler import TimerRunner
    runner = TimerRunner(engine, engine_sessions, worker_id="test")
    d = engine.deploy(db, bpmn("sub_timer_condition.bpmn"))
    inst = engine.start(db, d, StartRequest(deal("500"), "deal", 7))
    assert {w["element"] for w in inst.waiting} == {"Wait_day"}
    db.commit()
    clock.advance(24 * 3600)
    runner.run_due()
    db.expire_all()
    [task] = engine.tasks(db, instance_id=inst.id)
    assert task.element_id == "Follow_up"
    # the record changes, still small: the task stays; then it grows: the boundary fires
    assert engine.correlator.deliver(db, "deal.updated", "deal", 7,
                                     {"deal": {"id": 7, "amount": "900"}}) == []
    assert engine.correlator.deliver(db, "deal.updated", "deal", 7,
                                     {"deal": {"id": 7, "amount": "2000000"}}) == [inst.id]
    assert inst.status == Status.COMPLETED
    assert engine.task(db, task.id).status == TaskStatus.CANCELLED
    assert ("condition_met", "Big_now") in events(db, inst.id)


PING_PONG = """<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  id="D" targetNamespace="t"><bpmn:message id="In" name="{inbox}"/>
  <bpmn:message id="Out" name="{outbox}"/>
  <bpmn:process id="{key}" isExecutable="true">
  <bpmn:startEvent id="S"/><bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="{first}"/>
  <bpmn:sendTask id="Send" messageRef="Out"/>
  <bpmn:sequenceFlow id="F2" sourceRef="Send" targetRef="Receive"/>
  <bpmn:receiveTask id="Receive" messageRef="In"/>
  <bpmn:sequenceFlow id="F3" sourceRef="Receive" targetRef="Again"/>
  <bpmn:exclusiveGateway id="Again" default="F4"/>
  <bpmn:sequenceFlow id="F4" sourceRef="Again" targetRef="Send"/>
  <bpmn:sequenceFlow id="F5" sourceRef="Again" targetRef="E">
    <bpmn:conditionExpression>False</bpmn:conditionExpression></bpmn:sequenceFlow>
  <bpmn:endEvent id="E"/>
  </bpmn:process></bpmn:definitions>"""


def test_two_processes_messaging_each_other_for_ever_are_stopped(engine, db):
    ping = engine.deploy(db, PING_PONG.format(inbox="pong", outbox="ping", key="ping",
                                              first="Receive"))
    pong = engine.deploy(db, PING_PONG.format(inbox="ping", outbox="pong", key="pong",
                                              first="Send"))
    waiting = engine.start(db, ping, StartRequest({}, "deal", 7))
    starter = engine.start(db, pong, StartRequest({}, "deal", 7))  # sends the first ping
    assert waiting.status == starter.status == Status.WAITING  # both wait again, no hang
    dropped = [h for i in (waiting.id, starter.id) for h in engine.history(db, i)
               if h.event == "message_dropped"]
    assert len(dropped) == 1
    assert "5 instances in a row sent messages to each other" in dropped[0].message


def test_a_loop_without_a_deciding_gateway_is_refused(engine, db):
    errors = engine.validate(PING_PONG.format(inbox="a", outbox="b", key="k", first="Send")
                             .replace('targetRef="Again"', 'targetRef="Send"'))
    assert [e.message for e in errors] == [
        "the flow loops back without a deciding gateway (Send → Receive → Send); route the "
        "loop through an exclusive gateway with a way out"]
