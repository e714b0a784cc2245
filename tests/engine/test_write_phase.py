"""An instance run writes its own rows in one Core phase (``InstanceRun.save``): the rows are
those the ORM wrote before, the instance object stays in step without a flush, a stale
version is still a conflict, and a rolled-back savepoint still expires the object."""
from __future__ import annotations

import json

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from sqlalchemy import inspect, select, text, update

from engine.errors import Conflict
from engine.parser import serializer_config
from engine.persistence import conflicts_guarded, write_instance
from engine.ports import StartRequest
from engine.sandbox import Sandbox
from engine.serialization import WorkflowSerializer
from engine.store import ProcessInstance, ProcessTask, ProcessTaskCandidate, Status, Timer
from engine.tasks import TASKS_INSERTED
from engine.timer_service import WAKE_KEY
from engine.validation import Compiler

from .support import bpmn, deal


@pytest.mark.parametrize("name", ["routing.bpmn", "parallel.bpmn", "plain_manual_sub.bpmn",
                                  "sub_timer_condition.bpmn", "timer_boundary.bpmn"])
def test_the_state_is_the_library_dict_without_the_spec(name, registry):
    compiled, errors = Compiler(registry, Sandbox(), None).compile(bpmn(name), ())
    assert compiled is not None, errors
    wf = BpmnWorkflow(compiled.spec, compiled.subprocess_specs)
    wf.do_engine_steps()
    library = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(serializer_config()))
    full = library.to_dict(wf)
    assert "spec" in full and "subprocess_specs" in full
    full.pop("spec")
    full.pop("subprocess_specs")
    state = WorkflowSerializer().state_to_dict(wf)
    assert "spec" not in state
    assert json.dumps(state) == json.dumps(full)  # same keys, same order, same values


def test_save_writes_the_instance_with_core_and_leaves_the_object_clean(engine, db):
    d = engine.deploy(db, bpmn("routing.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7, message="deal.created"))
    assert inst.status == Status.WAITING and inst.version == 2  # inserted, then saved once
    state = inspect(inst)
    assert not state.modified and inst not in db.dirty
    raw_state, version, status = db.execute(text(
        "SELECT CAST(state AS TEXT), version, status FROM process_instance WHERE id = :id"),
        {"id": inst.id}).one()
    assert json.loads(raw_state) == inst.state and (version, status) == (2, Status.WAITING)
    # the text is what the column's JSON type itself writes (``json.dumps``), byte for byte
    assert raw_state == json.dumps(inst.state)
    assert db.scalar(select(ProcessInstance.waiting).where(ProcessInstance.id == inst.id)) \
        == inst.waiting


def test_a_stale_version_is_a_conflict(engine, db, sessions):
    d = engine.deploy(db, bpmn("routing.bpmn"))
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7, message="deal.created"))
    db.commit()
    other = sessions()
    other.execute(update(ProcessInstance).where(ProcessInstance.id == inst.id)
                  .values(version=ProcessInstance.version + 1))
    other.commit()
    with pytest.raises(Conflict), conflicts_guarded():
        write_instance(db, inst, {"status": Status.INCIDENT})
    db.rollback()
    assert db.get(ProcessInstance, inst.id).status == Status.WAITING


def test_a_rolled_back_savepoint_expires_the_instance(engine, db):
    d = engine.deploy(db, bpmn("routing.bpmn"))
    db.commit()
    nested = db.begin_nested()
    inst = engine.start(db, d, StartRequest(deal(), "deal", 7, message="deal.created"))
    instance_id = inst.id
    nested.rollback()
    assert inspect(inst).expired  # as after a flush: not left holding rolled-back values
    assert db.get(ProcessInstance, instance_id) is None or inspect(inst).expired
    assert db.scalar(select(ProcessInstance.id).where(ProcessInstance.id == instance_id)) \
        is None


def test_task_rows_their_candidates_and_the_listeners(engine, db):
    told = []
    db.info[TASKS_INSERTED] = [lambda session, rows: told.append([dict(r) for r in rows])]
    d = engine.deploy(db, bpmn("parallel.bpmn"))
    inst = engine.start(db, d, StartRequest({}, started_by=3))
    rows = engine.tasks(db, instance_id=inst.id)
    assert sorted(r.element_id for r in rows) == ["finance", "legal"] or len(rows) == 2
    # one listener call per write; every row it was told of exists with that id
    told_rows = [r for call in told for r in call]
    assert sorted(r["id"] for r in told_rows) == sorted(r.id for r in rows)
    for r in rows:
        assert r.result is None
        assert db.execute(text("SELECT result IS NULL FROM process_task WHERE id = :id"),
                          {"id": r.id}).scalar() in (1, True)  # SQL NULL, not JSON null
    offered = [r for r in rows if r.candidate_ids]
    assert offered, "parallel.bpmn offers one task to several users"
    for r in offered:
        users = db.scalars(select(ProcessTaskCandidate.user_id)
                           .where(ProcessTaskCandidate.task_id == r.id)).all()
        assert sorted(users) == sorted(set(r.candidate_ids))
    assert db.scalar(select(ProcessTask.id).where(ProcessTask.instance_id == inst.id,
                                                  ProcessTask.id.not_in([r.id for r in rows])
                                                  )) is None


def test_timer_rows_are_written_and_wake_the_scheduler(engine, db, clock):
    d = engine.deploy(db, bpmn("timer_boundary.bpmn"))
    inst = engine.start(db, d, StartRequest({}, started_by=3))
    timers = db.scalars(select(Timer).where(Timer.instance_id == inst.id)).all()
    assert timers, "the boundary timer of the waiting task has a row"
    for t in timers:
        assert (t.status, t.sequence, t.attempts, t.schedule_key, t.locked_by) == (
            "pending", 0, 0, None, None)
        assert t.definition_id == d.id and t.created_at == clock.now()
    assert db.info[WAKE_KEY] == min(t.due_at for t in timers)
