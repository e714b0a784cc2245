"""Service tasks: registry, parameters, savepoints, retries with back-off, incidents."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.errors import Conflict, EngineError
from engine.ports import ParamSpec, StartRequest
from engine.runtime import Engine
from engine.services import ServiceRegistry
from engine.store import ProcessHistory, Status

from .support import FakeOperation, bpmn, deal


@pytest.fixture()
def flaky(registry: ServiceRegistry) -> FakeOperation:
    op = FakeOperation("test.flaky", (ParamSpec("amount", "decimal"),), result={"crm_ok": True})
    registry.register(op)
    return op


def start_chain(engine, db, data=None):
    d = engine.deploy(db, bpmn("service_chain.bpmn"))
    return engine.start(db, d, StartRequest(data or deal(), "deal", 7))


def test_registry_refuses_duplicates_and_lists_specs(registry, assign):
    with pytest.raises(EngineError, match="already registered"):
        registry.register(FakeOperation("test.assign"))
    registry.register(FakeOperation("a.first"))
    assert [s.name for s in registry.specs()] == ["a.first", "test.assign"]
    assert registry.get("test.assign") is assign and registry.get("nope") is None


def test_operation_gets_context_typed_params_and_a_copy_of_the_data(engine, db, flaky):
    inst = start_chain(engine, db)
    [(ctx, params, data)] = flaky.calls
    assert (ctx.definition_key, ctx.definition_version, ctx.instance_id, ctx.element_id,
            ctx.entity_type, ctx.entity_id) == ("service_chain", 1, inst.id, "Call", "deal", 7)
    assert ctx.label == f"process service_chain v1, instance {inst.id}"
    assert params == {"amount": "3000000.00"}
    assert data["deal"]["id"] == 7
    assert engine.instance_data(db, inst.id)["crm_ok"] is True
    assert inst.status == Status.WAITING  # on the user task after the call


def test_failure_retries_with_back_off_then_raises_an_incident(engine, db, flaky, clock):
    flaky.fail_times = 10
    inst = start_chain(engine, db)
    assert len(flaky.calls) == 1
    assert (inst.status, inst.incident_element_id, inst.incident_attempts) == (
        Status.WAITING, "Call", 1)
    assert inst.incident_retry_at == clock.now().replace(second=1)
    assert "test.flaky failed (attempt 1): test.flaky is down" == inst.incident_message

    assert engine.run_due_retries(db) == 0  # not due yet
    clock.advance(1)
    assert engine.run_due_retries(db) == 1
    assert (len(flaky.calls), inst.incident_attempts) == (2, 2)
    clock.advance(4)
    assert engine.run_due_retries(db) == 0
    clock.advance(1)
    assert engine.run_due_retries(db) == 1
    assert len(flaky.calls) == 3
    assert (inst.status, inst.incident_element_id, inst.incident_retry_at) == (
        Status.INCIDENT, "Call", None)
    assert inst.incident_message == "test.flaky failed after 3 attempts: test.flaky is down"
    clock.advance(3600)
    assert engine.run_due_retries(db) == 0 and len(flaky.calls) == 3  # stays put
    assert engine.tasks(db, instance_id=inst.id) == []

    flaky.fail_times = 0
    engine.retry(db, inst.id, user_id=1)
    assert len(flaky.calls) == 4
    assert (inst.status, inst.incident_element_id, inst.incident_message) == (
        Status.WAITING, None, None)
    [task] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, task.id, 11, {})
    assert inst.status == Status.COMPLETED
    events = [h.event for h in engine.history(db, inst.id)]
    assert events.count("retry_scheduled") == 2 and "incident" in events and "retried" in events


def test_success_on_a_later_attempt_clears_the_incident(engine, db, flaky, clock):
    flaky.fail_times = 1
    inst = start_chain(engine, db)
    clock.advance(1)
    engine.run_due_retries(db)
    assert (inst.status, inst.incident_element_id, len(flaky.calls)) == (
        Status.WAITING, None, 2)
    assert len(engine.tasks(db, instance_id=inst.id)) == 1


def test_non_retryable_failure_is_an_incident_at_once(engine, db, flaky):
    flaky.fail_times, flaky.retryable = 1, False
    inst = start_chain(engine, db)
    assert (inst.status, inst.incident_attempts) == (Status.INCIDENT, 1)
    assert inst.incident_message == "test.flaky failed after 1 attempt: test.flaky is down"


def test_unexpected_exceptions_are_retried_like_transient_failures(engine, db, flaky):
    flaky.fail_times, flaky.error = 1, KeyError("boom")
    inst = start_chain(engine, db)
    assert inst.status == Status.WAITING and "KeyError: 'boom'" in inst.incident_message


def test_a_failed_call_rolls_back_only_its_own_writes(engine, db, flaky, clock):
    def write(session, ctx):
        session.add(ProcessHistory(instance_id=ctx.instance_id, at=clock.now(),
                                   event="op-write", message="written by the operation"))
        session.flush()

    def writes():
        return db.scalars(select(ProcessHistory).where(ProcessHistory.event == "op-write")).all()

    flaky.write, flaky.fail_times = write, 1
    inst = start_chain(engine, db)
    assert writes() == []  # rolled back with the failed call's savepoint
    assert inst.incident_attempts == 1 and inst.status == Status.WAITING
    assert engine.history(db, inst.id)[0].event == "started"  # the engine's own rows stay
    clock.advance(1)
    engine.run_due_retries(db)
    assert len(writes()) == 1  # the successful call's write stays
    db.commit()


def test_other_instances_are_unaffected_by_a_failing_one(engine, db, flaky):
    flaky.fail_if = lambda data: data["deal"]["id"] == 1
    bad = start_chain(engine, db, deal(id=1))
    good = start_chain(engine, db, deal(id=2))
    assert (bad.status, good.status) == (Status.INCIDENT, Status.WAITING)
    assert bad.incident_message == "test.flaky failed after 1 attempt: rejected"
    assert len(engine.tasks(db, instance_id=good.id)) == 1


def test_results_that_are_not_json_are_refused(engine, db, flaky):
    flaky.result = {"when": object()}
    inst = start_chain(engine, db)
    assert inst.status == Status.INCIDENT
    assert "result.when holds a object" in inst.incident_message


def test_operation_gone_after_deploy_is_an_incident(db, assigner, clock, registry, flaky):
    d = Engine(registry=registry, assigner=assigner, clock=clock).deploy(
        db, bpmn("service_chain.bpmn"))
    bare = Engine(registry=ServiceRegistry(), assigner=assigner, clock=clock)
    inst = bare.start(db, d, StartRequest(deal()))
    assert inst.status == Status.INCIDENT
    assert "operation 'test.flaky' is not registered" in inst.incident_message


def test_parameter_expression_failing_at_run_time(engine, db, flaky):
    inst = start_chain(engine, db, {"deal": {"id": 1}})
    assert inst.status == Status.INCIDENT
    assert "parameter: unknown field 'deal.amount'" in inst.incident_message
    assert flaky.calls == []


def test_retry_needs_an_incident(engine, db, flaky):
    inst = start_chain(engine, db)
    with pytest.raises(Conflict, match="no incident"):
        engine.retry(db, inst.id)
