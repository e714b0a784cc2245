"""The heatmap's "passed" counts every element an instance went through: user tasks done in
the inbox, multi-instance activities and embedded sub-processes (and their inner elements)
— once per instance, however many rows or loops it ran."""
from __future__ import annotations

import pytest

from automation.process_trace import heatmap, instance_trace
from engine.ports import StartRequest

from .support import bpmn, deal
from .test_bpmn_coverage import products_deal, reload, reserve  # noqa: F401  (fixtures)


@pytest.mark.usefixtures("reserve")
def test_heatmap_counts_user_tasks_multi_instance_and_sub_processes(engine, db):
    d = engine.deploy(db, bpmn("multi_instance.bpmn"))
    done = engine.start(db, d, StartRequest(products_deal(), "deal", 7))
    for _ in range(3):
        [task] = engine.tasks(db, instance_id=done.id)
        reload(engine, db)
        engine.complete(db, task.id, 11, {})
    standing = engine.start(db, d, StartRequest(products_deal(), "deal", 8))
    heat = heatmap(db, d.id)
    assert heat["passed"]["Reserve"] == 2  # the parallel multi-instance, both instances
    assert heat["passed"]["Confirm"] == 1  # the sequential one of user tasks: done by one
    assert heat["active"] == {"Confirm": 1}
    assert standing.status == "waiting"


def test_heatmap_counts_embedded_sub_processes_and_manual_tasks(engine, db):
    p = engine.deploy(db, bpmn("plain_manual_sub.bpmn"))
    inst = engine.start(db, p, StartRequest(deal(), "deal", 7))
    [todo] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, todo.id, 11, {})
    [approve] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, approve.id, 11, {})
    heat = heatmap(db, p.id)
    for element in ("Print", "Approve", "Prepare", "Prep_end", "Signal_done"):
        assert heat["passed"][element] == 1, element
    # the viewer of the instance: the tasks done in the inbox and the flows out of them
    trace = instance_trace(db, inst, p.bpmn_xml)
    assert {"Print", "Approve"} <= set(trace["done"])
    assert trace["counts"]["Approve"] == 1
    assert {"P3", "F5"} <= set(trace["flows"])


def test_heatmap_counts_event_sub_processes_inside_an_embedded_sub_process(engine, db,
                                                                           registry):
    from engine.ports import ParamSpec

    from .support import FakeOperation
    registry.register(FakeOperation("test.flaky", (ParamSpec("amount", "decimal"),),
                                    result={"crm_ok": True}))
    d = engine.deploy(db, bpmn("events_in_subprocess.bpmn"))
    cancelled = engine.start(db, d, StartRequest(deal(amount="10"), "deal", 7))
    standing = engine.start(db, d, StartRequest(deal(amount="10"), "deal", 8))
    trace = instance_trace(db, standing, d.bpmn_xml)
    # the viewer shows the sub-process's event sub-processes waiting with its task
    assert {"Do", "Cancel_start", "Prices_start"} <= set(trace["active"])
    reload(engine, db)
    engine.send_message(db, cancelled.id, "deal.cancelled", {})
    engine.throw_signal(db, "prices.updated")  # both run Work_prices beside Do
    heat = heatmap(db, d.id)
    for element in ("Work_cancel", "Cancel_start", "Cancelled", "Cancel_end", "Work"):
        assert heat["passed"][element] == 1, element  # the cancelled instance only
    for element in ("Work_prices", "Prices_start", "Repriced", "Prices_end"):
        assert heat["passed"][element] == 1, element  # the one still in Work only
    assert heat["passed"]["Work_start"] == 2
    assert "Do" not in heat["passed"] and heat["active"] == {"After": 1, "Do": 1}
    trace = instance_trace(db, cancelled, d.bpmn_xml)
    assert {"Work_cancel", "Cancel_start", "Cancelled", "Cancel_end"} <= set(trace["done"])
    assert "Do" not in trace["done"] and trace["active"] == ["After"]
    assert {"C1", "C2", "F2"} <= set(trace["flows"]) and "W6" not in trace["flows"]
