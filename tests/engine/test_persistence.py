"""Persistence: save/restore at every wait state, frozen instances, spec stored once, starts."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import AlreadyStarted, EngineError
from engine.ports import StartRequest
from engine.store import Status

from .driver import SERIALIZER, Driver, compile_spec
from .support import DATA, bpmn, deal

FROZEN = DATA / "frozen"

# (process, dmn files, start data, start message, actions)
SCENARIOS = {
    "routing-approved": ("routing.bpmn", (), deal(), "deal.created",
                         [["complete", "Task_approve", {"decision": "approve"}]]),
    "routing-small": ("routing.bpmn", (), deal("10"), "deal.created", []),
    "parallel": ("parallel.bpmn", (), {}, None,
                 [["complete", "Task_finance", {"limit": "100"}],
                  ["complete", "Task_legal", {"legal_ok": True}]]),
    "inclusive": ("inclusive.bpmn", (), deal("5000000"), None,
                  [["complete", "Review", {}]]),
    "event-gateway": ("event_gateway.bpmn", (), deal(), "deal.created",
                      [["message", "deal.won", {"won_by": 11}]]),
    "multi-start": ("multi_start.bpmn", (), {}, "lead.created",
                    [["complete", "Greet", {}]]),
    "service-chain": ("service_chain.bpmn", (), deal(), None, [["complete", "Check", {}]]),
    "timer-wait": ("timer_wait.bpmn", (), {}, None, [["timer", "Wait_3d", {}]]),
    "timer-boundary-reminded": ("timer_boundary.bpmn", (), {}, None,
                                [["timer", "Remind", {}], ["complete", "Approve", {"ok": True}]]),
    "timer-boundary-escalated": ("timer_boundary.bpmn", (), {}, None,
                                 [["timer", "Escalate", {}],
                                  ["complete", "Approve_head", {"ok": False}]]),
    "timer-gateway": ("timer_gateway.bpmn", (), {}, None, [["timer", "Timeout", {}]]),
    "plain-manual-sub": ("plain_manual_sub.bpmn", (), deal(), None,
                         [["complete", "Print", {}], ["complete", "Approve", {}]]),
    "events-inside-reply": ("events_inside.bpmn", (), deal(), None,
                            [["message", "client.replied", {"reply": "yes"}],
                             ["complete", "Tell_head", {}]]),
    "events-inside-cancel": ("events_inside.bpmn", (), deal(), None,
                             [["message", "deal.cancelled", {"why": "gone"}]]),
    "subprocess-error-end": ("subprocess_error.bpmn", (), deal("5000000"), None,
                             [["complete", "Call_client", {}]]),
    "await-offer": ("await_offer.bpmn", (), {}, None,
                    [["message", "offer.approved", {"message": {"data": {"discount": 3}}}]]),
    "dmn": ("dmn_routing.bpmn", ("approver_role.dmn",),
            {"deal": {"amount": "2000000", "company": {"kind": "corporate"}}}, None,
            [["complete", "Head_approval", {}]]),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_reloading_at_every_wait_state_finishes_the_same(name):
    process, dmn, data, message, actions = SCENARIOS[name]
    spec, variables = compile_spec(process, dmn)
    straight = Driver(spec, reload=False, variables=variables).start(data, message)
    reloaded = Driver(spec, reload=True, variables=variables).start(data, message)
    assert reloaded.play(actions) == straight.play(actions)
    assert reloaded.path == straight.path
    assert reloaded.reloads == len(actions)


def frozen_files() -> list[Path]:
    return sorted(FROZEN.glob("*.json"))


def test_there_are_frozen_instances():
    assert len(frozen_files()) >= 3


@pytest.mark.parametrize("path", frozen_files(), ids=lambda p: p.stem)
def test_frozen_instance_loads_and_runs_to_the_end(path):
    """Instances saved by an earlier build must keep loading after library upgrades."""
    fx = json.loads(path.read_text(encoding="utf-8"))
    driver = Driver(fx["spec"], reload=True).load(fx["state"], fx["serializer_version"])
    data = driver.play(fx["actions"])
    assert {k: data[k] for k in fx["expect"]} == fx["expect"]
    assert driver.path[-1] == fx["last_element"]


def freeze(name: str, process: str, dmn: tuple[str, ...], data: dict, message: str | None,
           before: list, after: list, expect: dict, last: str) -> None:  # pragma: no cover
    """Write a frozen fixture: run ``before`` actions, save, record what finishes it.

    Run ``python -c "from tests.engine.test_persistence import freeze_all; freeze_all()"``
    only when adding fixtures — never to "fix" a failing one.
    """
    spec, variables = compile_spec(process, dmn)
    driver = Driver(spec, reload=False, variables=variables).start(data, message)
    driver.settle()
    for action in before:
        driver.act(action)
        driver.settle()
    fx = {"process": process, "serializer_version": SERIALIZER.version, "spec": spec,
          "state": json.loads(json.dumps(SERIALIZER.state_to_dict(driver.wf))),
          "actions": after, "expect": expect, "last_element": last}
    FROZEN.mkdir(exist_ok=True)
    (FROZEN / f"{name}.json").write_text(json.dumps(fx, ensure_ascii=False, indent=1),
                                         encoding="utf-8")


def freeze_all() -> None:  # pragma: no cover
    freeze("routing-waiting-approval", "routing.bpmn", (), deal(), "deal.created", [],
           [["complete", "Task_approve", {"decision": "approve", "comment": "ok"}]],
           {"decision": "approve", "crm_ok": True, "threshold": "1000000"}, "End_approved")
    freeze("parallel-one-branch-done", "parallel.bpmn", (), {}, None,
           [["complete", "Task_legal", {"legal_ok": False}]],
           [["complete", "Task_finance", {"limit": "20.5"}]],
           {"total": "41.0", "summary": "legal=False total=41.0"}, "End_done")
    freeze("event-gateway-waiting", "event_gateway.bpmn", (), deal(), "deal.created", [],
           [["message", "deal.lost", {"reason": "budget"}]],
           {"outcome": "lost: budget"}, "End_lost")
    freeze("timer-boundary-waiting", "timer_boundary.bpmn", (), {}, None, [],
           [["timer", "Remind", {}], ["timer", "Escalate", {}],
            ["complete", "Approve_head", {"ok": True}]],
           {"reminded": True, "ok": True}, "End_escalated")
    freeze("dmn-after-decision", "dmn_routing.bpmn", ("approver_role.dmn",),
           {"deal": {"amount": "10", "company": {"kind": "retail"}}}, None, [],
           [["complete", "Manager_approval", {}]],
           {"approver": "sales_manager", "band": "small (0k)"}, "End_done")
    freeze_bpmn_coverage()


def freeze_bpmn_coverage() -> None:  # pragma: no cover
    """The fixtures of sub-processes, manual tasks and events inside an instance."""
    freeze("sub-process-manual-waiting", "plain_manual_sub.bpmn", (), deal(), None, [],
           [["complete", "Print", {}], ["complete", "Approve", {}]],
           {"prepared": 1}, "End_1")
    freeze("events-inside-waiting", "events_inside.bpmn", (), deal(), None, [],
           [["message", "client.replied", {"reply": "yes"}], ["complete", "Tell_head", {}]],
           {"signalled": True, "reply": "yes"}, "Head_told")


# ------------------------------------------------------------------ engine storage

def test_event_starts_each_definition_at_most_once(engine, db):
    routing = engine.deploy(db, bpmn("routing.bpmn"))
    welcome = engine.deploy(db, bpmn("multi_start.bpmn"))
    request = StartRequest(deal(), "deal", 7, event_id=41, message="deal.created")
    engine.start(db, routing, request)
    engine.start(db, welcome, request)  # another definition may react to the same event
    with pytest.raises(AlreadyStarted, match="event 41 already started process deal_routing"):
        engine.start(db, routing, request)
    manual = StartRequest({}, event_id=None)
    engine.start(db, welcome, manual)
    engine.start(db, welcome, manual)  # manual starts carry no event and never collide
    assert len(engine.instances(db, definition_key="welcome")) == 3
    assert len(engine.instances(db, entity_type="deal", entity_id=7)) == 2


def test_state_is_saved_once_per_call_without_the_spec(engine, db):
    d = engine.deploy(db, bpmn("parallel.bpmn"))
    inst = engine.start(db, d, StartRequest({}))
    assert inst.version == 2  # inserted, then saved once at the wait state
    assert inst.serializer_version == engine.serializer.version
    assert "spec" not in inst.state
    full = len(json.dumps(engine.serializer.state_to_dict(
        engine._load(db, inst).wf))) + len(json.dumps(d.specs))
    assert len(json.dumps(inst.state)) < full * 0.6
    [task, *_] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, task.id, 11, {"legal_ok": True} if "legal" in task.element_id
                    else {"limit": "1"})
    assert inst.version == 3


def test_spec_missing_for_the_current_serializer_is_rebuilt_from_the_xml(engine, db):
    d = engine.deploy(db, bpmn("routing.bpmn"))
    d.specs = {"0.9": {"spec": {}, "subprocess_specs": {}}}  # as if deployed by an old build
    inst = engine.start(db, d, StartRequest(deal(), message="deal.created"))
    assert inst.status == Status.WAITING
    assert set(d.specs) == {"0.9", engine.serializer.version}
    inst.serializer_version = "0.8"
    with pytest.raises(EngineError, match="no spec of deal_routing v1 for serializer 0.8"):
        engine.instance_data(db, inst.id)


def test_each_definition_version_is_parsed_once_and_shared(engine, db):
    d = engine.deploy(db, bpmn("parallel.bpmn"))
    loads = {"n": 0}
    real = engine._spec_entry

    def counting(*args):
        loads["n"] += 1
        return real(*args)

    engine._spec_entry = counting
    a = engine.start(db, d, StartRequest({}))
    b = engine.start(db, d, StartRequest({}))
    wf_a, wf_b = engine._load(db, a).wf, engine._load(db, b).wf
    assert wf_a.spec is wf_b.spec  # one parsed spec object, never copied per instance
    assert loads["n"] == 1  # the stored spec was read and deserialized once
    v2 = engine.deploy(db, bpmn("parallel.bpmn"))  # a new version gets its own
    c = engine.start(db, v2, StartRequest({}))
    assert engine._load(db, c).wf.spec is not wf_a.spec and loads["n"] == 2
    # The shared spec is not changed by running: both instances still finish on their own.
    for inst in (a, b):
        for task in engine.tasks(db, instance_id=inst.id):
            engine.complete(db, task.id, 11, {"legal_ok": True} if "legal" in task.element_id
                            else {"limit": "1"})
        assert inst.status == Status.COMPLETED


def test_a_finished_instance_keeps_only_its_final_data(engine, db):
    d = engine.deploy(db, bpmn("parallel.bpmn"))
    inst = engine.start(db, d, StartRequest({"note": "Вектор"}))
    running = len(json.dumps(inst.state))
    for task in engine.tasks(db, instance_id=inst.id):
        engine.complete(db, task.id, 11, {"legal_ok": True} if "legal" in task.element_id
                        else {"limit": "1"})
    assert inst.status == Status.COMPLETED
    data = engine.instance_data(db, inst.id)
    assert data["note"] == "Вектор" and data["legal_ok"] is True and "total" in data
    assert inst.state == {"final_data": data}
    assert len(json.dumps(inst.state)) < running / 2
    with pytest.raises(EngineError, match="has finished; only its data is kept"):
        engine._load(db, inst)  # nothing runs it again


def test_engine_imports_neither_flask_nor_crm_models():
    code = ("import sys, engine.runtime, engine.store, engine.extensions; "
            "bad = [m for m in ('flask', 'crm_models') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
