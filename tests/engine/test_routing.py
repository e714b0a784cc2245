"""Given deployed processes, when instances start, then tokens take the right paths."""
from __future__ import annotations

import pytest

from engine.errors import EngineError
from engine.ports import StartRequest
from engine.store import Status

from .support import bpmn, deal


def start(engine, db, name, data, *, message=None, event_id=None, dmn=()):
    definition = engine.deploy(db, bpmn(name), dmn)
    return engine.start(db, definition, StartRequest(data, "deal", 7, event_id=event_id,
                                                     message=message))


def open_tasks(engine, db, inst):
    return engine.tasks(db, instance_id=inst.id)


# ------------------------------------------------------------- exclusive gateways

def test_big_deal_goes_to_the_department_head_with_a_rendered_task(engine, db, clock):
    inst = start(engine, db, "routing.bpmn", deal("1500000.00"), message="deal.created")
    assert inst.status == Status.WAITING
    [task] = open_tasks(engine, db, inst)
    assert (task.element_id, task.assignee_id, task.status) == ("Task_approve", 10, "open")
    assert task.priority == 1
    assert task.due_at == clock.now().replace(hour=11)
    # unknown placeholders stay visible instead of silently rendering empty
    assert task.instructions == "Check Vector supply for 1500000.00 ({{deal.nope}})"
    assert [f["name"] for f in task.form] == ["comment", "decision"]
    history = [(h.event, h.element_id, h.message) for h in engine.history(db, inst.id)]
    assert ("left", "Gw_amount", "took flow Flow_big to Task_approve") in history
    assert any(e == "assigned" and "user 10" in m for e, _, m in history)


def test_small_deal_takes_the_default_flow_and_completes(engine, db):
    inst = start(engine, db, "routing.bpmn", deal("999999.99"), message="deal.created")
    assert inst.status == Status.COMPLETED
    assert open_tasks(engine, db, inst) == []
    assert ("left", "Gw_amount", "took flow Flow_small to End_small") in [
        (h.event, h.element_id, h.message) for h in engine.history(db, inst.id)]


def test_amount_comparison_is_numeric_not_textual(engine, db):
    # as text "999999.99" > "1000000" would be True and misroute the deal
    inst = start(engine, db, "routing.bpmn", deal("999999.99"), message="deal.created")
    assert inst.status == Status.COMPLETED
    inst = start(engine, db, "routing.bpmn", deal("10000000"), message="deal.created")
    assert inst.status == Status.WAITING


def test_condition_on_unknown_field_is_an_incident_naming_the_flow(engine, db):
    data = deal()
    del data["deal"]["amount"]
    inst = start(engine, db, "routing.bpmn", data, message="deal.created")
    assert inst.status == Status.INCIDENT
    assert inst.incident_element_id == "Flow_big"
    assert "unknown field 'deal.amount'" in inst.incident_message
    assert open_tasks(engine, db, inst) == []  # not silently routed to the default flow


def test_condition_with_wrong_type_is_an_incident(engine, db):
    inst = start(engine, db, "routing.bpmn", deal("a lot"), message="deal.created")
    assert inst.status == Status.INCIDENT
    assert inst.incident_element_id == "Flow_big"
    assert "one is a number and the other is not" in inst.incident_message


def test_incident_on_one_instance_leaves_others_running(engine, db):
    bad = deal()
    bad["deal"]["amount"] = None
    definition = engine.deploy(db, bpmn("routing.bpmn"))
    broken = engine.start(db, definition, StartRequest(bad, message="deal.created"))
    fine = engine.start(db, definition, StartRequest(deal(), message="deal.created"))
    assert (broken.status, fine.status) == (Status.INCIDENT, Status.WAITING)


# ---------------------------------------------------------- inclusive / parallel

def test_inclusive_gateway_runs_every_matching_branch_and_joins(engine, db):
    inst = start(engine, db, "inclusive.bpmn", deal("2000000"))
    [task] = open_tasks(engine, db, inst)
    assert task.assignee_id == 11  # the deal's responsible
    engine.complete(db, task.id, 11, {})
    data = engine.instance_data(db, inst.id)
    assert inst.status == Status.COMPLETED
    assert (data["big"], data["corp"], "plain" in data) == (True, True, False)


def test_inclusive_gateway_falls_back_to_its_default(engine, db):
    data = deal("10")
    data["deal"]["company"]["title"] = "ИП Петров"
    inst = start(engine, db, "inclusive.bpmn", data)
    engine.complete(db, open_tasks(engine, db, inst)[0].id, 11, {})
    data = engine.instance_data(db, inst.id)
    assert (data["plain"], "big" in data, "corp" in data) == (True, False, False)


def test_parallel_branches_wait_for_each_other(engine, db):
    inst = start(engine, db, "parallel.bpmn", {})
    finance, legal = sorted(open_tasks(engine, db, inst), key=lambda t: t.element_id)
    assert (legal.assignee_id, finance.candidate_ids) == (11, [11, 12])
    engine.complete(db, legal.id, 11, {"legal_ok": True})
    assert inst.status == Status.WAITING
    engine.complete(db, finance.id, 12, {"limit": "250000.50"})
    assert inst.status == Status.COMPLETED
    data = engine.instance_data(db, inst.id)
    assert data["total"] == "500001.00"
    assert data["summary"] == "legal=True total=500001.00"


# ------------------------------------------------------------- event-based gateway

def test_event_based_gateway_takes_the_first_message_and_drops_the_other(engine, db):
    inst = start(engine, db, "event_gateway.bpmn", deal(), message="deal.created")
    assert inst.status == Status.WAITING
    assert sorted(e["event"] for e in engine.waiting_events(db, inst.id)) == [
        "deal.lost", "deal.won"]
    assert ("waiting", "Wait", "waiting for 'deal.won'") in [
        (h.event, h.element_id, h.message) for h in engine.history(db, inst.id)]
    engine.send_message(db, inst.id, "deal.lost", {"reason": "price"})
    assert inst.status == Status.COMPLETED
    assert engine.instance_data(db, inst.id)["outcome"] == "lost: price"
    assert engine.waiting_events(db, inst.id) == []


def test_message_nobody_waits_for_is_refused(engine, db):
    inst = start(engine, db, "event_gateway.bpmn", deal(), message="deal.created")
    with pytest.raises(EngineError, match="not waiting for 'deal.updated'"):
        engine.send_message(db, inst.id, "deal.updated")


# --------------------------------------------------------------------- start events

@pytest.mark.parametrize("message,path", [("lead.created", "lead"), ("deal.created", "deal"),
                                          (None, "manual")])
def test_each_start_event_runs_only_its_own_path(engine, db, message, path):
    inst = start(engine, db, "multi_start.bpmn", {}, message=message)
    [task] = open_tasks(engine, db, inst)
    assert engine.instance_data(db, inst.id)["path"] == path
    assert engine.waiting_events(db, inst.id) == []  # the other start events do not wait
    engine.complete(db, task.id, 11, {})
    assert inst.status == Status.COMPLETED


def test_start_refuses_a_message_the_process_does_not_start_on(engine, db):
    definition = engine.deploy(db, bpmn("routing.bpmn"))
    with pytest.raises(EngineError, match="does not start on 'lead.created'"):
        engine.start(db, definition, StartRequest({}, message="lead.created"))
    with pytest.raises(EngineError, match="no manual start"):
        engine.start(db, definition, StartRequest({}))


def test_start_data_must_be_json(engine, db):
    definition = engine.deploy(db, bpmn("multi_start.bpmn"))
    with pytest.raises(EngineError, match="start data.deal holds a set"):
        engine.start(db, definition, StartRequest({"deal": {1, 2}}))


def test_process_variables_are_in_the_data_and_win_over_start_data(engine, db):
    inst = start(engine, db, "routing.bpmn", deal("10") | {"threshold": "1"},
                 message="deal.created")
    assert inst.status == Status.COMPLETED  # 10 > 1 would have asked for approval
    assert engine.instance_data(db, inst.id)["threshold"] == "1000000"


# ------------------------------------------------------------------------ DMN

@pytest.mark.parametrize("amount,kind,role,band", [
    ("1500000", "corporate", "corporate_head", "large"),
    ("1500000", "retail", "sales_manager", "large"),
    ("50000", "corporate", "sales_manager", "small (50k)"),
])
def test_dmn_routing_table_by_amount_band_and_client(engine, db, amount, kind, role, band):
    data = deal(amount)
    data["deal"]["company"]["kind"] = kind
    inst = start(engine, db, "dmn_routing.bpmn", data, dmn=[bpmn("approver_role.dmn")])
    [task] = open_tasks(engine, db, inst)
    expected = "Head_approval" if role == "corporate_head" else "Manager_approval"
    assert task.element_id == expected
    got = engine.instance_data(db, inst.id)
    assert (got["approver"], got["band"]) == (role, band)


def test_dmn_cell_that_cannot_be_evaluated_is_an_incident_on_the_rule_task(engine, db):
    inst = start(engine, db, "dmn_routing.bpmn", deal("1500000"),  # no deal.company.kind
                 dmn=[bpmn("approver_role.dmn")])
    assert inst.status == Status.INCIDENT
    assert inst.incident_element_id == "Route"
    assert "deal.company.kind" in inst.incident_message


# ---------------------------------------------------------------------- scripts

def test_failing_script_is_an_incident_and_changes_no_data(engine, db):
    data = deal("10")
    data["deal"]["company"]["title"] = "ИП"
    data["deal"]["fail"] = True
    inst = start(engine, db, "inclusive.bpmn", data)
    assert inst.status == Status.INCIDENT
    assert inst.incident_element_id == "Plain"
    assert "division by zero" in inst.incident_message
    assert "plain" not in engine.instance_data(db, inst.id)  # the first line did not stick
    assert engine.tasks(db, instance_id=inst.id) == []
