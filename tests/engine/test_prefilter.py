"""Given a rule whose start condition cannot match, when it starts, then the workflow run is
skipped and exactly the rows a full run writes for that outcome are written."""
from __future__ import annotations

from typing import Any

import pytest

from automation.seed import PROCESSES_DIR
from engine.errors import AlreadyStarted
from engine.executor import FINAL_DATA
from engine.ports import ParamSpec, StartRequest
from engine.prefilter import derive
from engine.runtime import Engine
from engine.store import ProcessInstance, Status

from .support import FakeOperation, bpmn, deal

KEY_CLIENT = (PROCESSES_DIR / "key_client_routing.bpmn").read_text(encoding="utf-8")
LARGE_DEAL = (PROCESSES_DIR / "large_deal_routing.bpmn").read_text(encoding="utf-8")


def rows(engine: Engine, db: Any, inst: ProcessInstance) -> dict[str, Any]:
    """What the viewer, the heatmap and the instance list read of an instance."""
    db.flush()
    db.expire(inst)
    return {
        "status": inst.status, "state": inst.state, "waiting": inst.waiting,
        "ended": inst.ended_at is not None, "incident": (inst.incident_element_id,
                                                         inst.incident_message),
        "history": [(h.event, h.element_id, h.message, h.user_id, h.changes)
                    for h in engine.history(db, inst.id)]}


@pytest.fixture()
def registry(registry):
    """The fake registry with stand-ins for the operations the shipped rules call."""
    registry.register(FakeOperation("crm.assign_responsible", (
        ParamSpec("user", "user", required=False),
        ParamSpec("department_head", "string", required=False))))
    registry.register(FakeOperation("crm.notify", (
        ParamSpec("title", "string"), ParamSpec("text", "string"), ParamSpec("role", "string"),
        ParamSpec("responsible", "boolean", required=False))))
    return registry


@pytest.fixture()
def full(registry, assigner, clock) -> Engine:
    """The same engine without the pre-filter: every start runs the workflow."""
    return Engine(registry=registry, assigner=assigner, clock=clock, prefilter=False)


def deal_of(company: str | None, amount: str = "5000.00") -> dict[str, Any]:
    data = deal(amount, responsible_set_by=None)
    data["deal"]["company"] = None if company is None else {"id": 3, "title": company}
    data["event"] = {"type": "deal.created", "id": 1, "changed": {}}
    return data


@pytest.mark.parametrize(("source", "message", "data"), [
    (KEY_CLIENT, "deal.created", deal_of("ООО «Другая»")),
    (KEY_CLIENT, "deal.created", deal_of(None)),
    (KEY_CLIENT, "lead.created", {"lead": {"company_title": "ИП Иванов", "company": None}}),
    (LARGE_DEAL, "deal.created", deal_of(None, "999999.99")),
    (bpmn("routing.bpmn"), "deal.created", deal("999999.99")),
])
def test_a_skipped_start_writes_what_the_full_run_writes(engine, full, db, source, message,
                                                          data):
    definition = engine.deploy(db, source)
    skipped = engine.start(db, definition, StartRequest(data, "deal", 7, started_by=11,
                                                        message=message))
    ran = full.start(db, definition, StartRequest(data, "deal", 7, started_by=11,
                                                  message=message))
    assert engine._start_filters  # the filter was derived … and it skipped the run:
    assert skipped.version == 1 and ran.version == 2  # inserted completed, not updated
    assert rows(engine, db, skipped) == rows(full, db, ran)
    got = rows(engine, db, skipped)
    assert got["status"] == Status.COMPLETED and FINAL_DATA in got["state"]
    assert [h[0] for h in got["history"]] == ["started", "left", "left", "left", "finished"]


def test_a_start_that_matches_runs_the_workflow(engine, db):
    definition = engine.deploy(db, KEY_CLIENT)
    inst = engine.start(db, definition, StartRequest(deal_of("ООО «Вектор»"), "deal", 7,
                                                     message="deal.created"))
    history = [(h.event, h.element_id) for h in engine.history(db, inst.id)]
    assert ("left", "Gateway_DealIsKey") in history
    assert ("left", "End_DealNotKey") not in history
    assert inst.status != Status.COMPLETED or any(e == "left" and el == "Task_AssignHead"
                                                  for e, el in history)


def test_a_condition_that_fails_is_the_full_runs_incident_not_a_skip(engine, full, db):
    data = deal("a lot")  # a text amount compared with a number: the condition raises
    definition = engine.deploy(db, bpmn("routing.bpmn"))
    inst = engine.start(db, definition, StartRequest(data, "deal", 7, message="deal.created"))
    ran = full.start(db, definition, StartRequest(data, "deal", 7, message="deal.created"))
    assert inst.status == Status.INCIDENT and inst.incident_element_id == "Flow_big"
    got, want = rows(engine, db, inst), rows(full, db, ran)
    assert got.pop("state")["tasks"] and want.pop("state")["tasks"]  # a workflow was stored
    assert got == want


def test_data_over_the_limit_is_left_to_the_full_run(registry, assigner, clock, db):
    small = Engine(registry=registry, assigner=assigner, clock=clock, data_limit=200)
    definition = small.deploy(db, bpmn("routing.bpmn"))
    inst = small.start(db, definition, StartRequest(deal("5.00", notes="x" * 500), "deal", 7,
                                                    message="deal.created"))
    assert inst.status == Status.INCIDENT  # named by the full run, not silently completed


def test_a_skipped_start_keeps_an_event_to_one_instance_per_rule(engine, full, db):
    definition = engine.deploy(db, KEY_CLIENT)
    request = StartRequest(deal_of(None), "deal", 7, event_id=41, message="deal.created")
    engine.start(db, definition, request)
    for either in (engine, full):
        with pytest.raises(AlreadyStarted, match="event 41 already started process"):
            either.start(db, definition, request)


def test_only_the_start_gateway_default_end_shape_gets_a_filter(engine):
    def filt(source: str, message: str) -> Any:
        compiled, errors = engine.compiler.compile(source, ())
        assert compiled is not None, errors
        return derive(compiled.spec, compiled.subprocess_specs, message)

    key = filt(KEY_CLIENT, "deal.created")
    assert (key.start, key.gateway, key.end, key.default_flow) == (
        "Start_DealCreated", "Gateway_DealIsKey", "End_DealNotKey", "Flow_DealNotKey")
    assert filt(KEY_CLIENT, "deal.updated") is None  # not a start message of this rule
    assert filt(LARGE_DEAL, "deal.updated") is not None
    for name in ("parallel.bpmn", "timer_schedule.bpmn",
                 "event_gateway.bpmn", "inclusive.bpmn"):
        for message in ("deal.created", "deal.updated"):
            assert filt(bpmn(name), message) is None, name
    routing = bpmn("routing.bpmn")
    assert filt(routing, "deal.created") is not None
    terminate = routing.replace('<bpmn:endEvent id="End_small"/>', '<bpmn:endEvent id="End_small">'
                                '<bpmn:terminateEventDefinition/></bpmn:endEvent>')
    assert filt(terminate, "deal.created") is None  # not a plain end: the run decides
