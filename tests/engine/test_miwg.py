"""The MIWG reference models whose elements the engine supports deploy and run to the end,
as executable variants made by ``miwg_exec.executable`` (see its docstring); the others are
refused at deploy with a message naming what is not supported."""
from __future__ import annotations

import pytest

from engine.scheduler import TimerRunner
from engine.store import Status

from .miwg_exec import CORPUS, executable, run_to_end
from .support import FakeOperation

# (file, the pool to run)
RUNNABLE = [("A.1.0.bpmn", None), ("A.2.0.bpmn", None), ("A.3.0.bpmn", None),
            ("A.4.0.bpmn", "WFP-6-1"), ("A.4.1.bpmn", None),
            ("C.1.0.bpmn", "bpmn-miwg-test-case-c.1.0"), ("C.2.0.bpmn", "WFP-Page_1-1"),
            ("C.3.0.bpmn", None), ("C.9.0.bpmn", None), ("C.9.1.bpmn", None),
            ("C.9.2.bpmn", None)]
REFUSED = {
    "A.2.1.bpmn": "has a condition but leaves a bpmn:task",
    "B.1.0.bpmn": "data store 'Data\nStore Reference' is not supported",
    "B.2.0.bpmn": "bpmn:startEvent with bpmn:conditionalEventDefinition is not supported",
    "C.1.1.bpmn": "(ioSpecification) is not supported",
    "C.4.0.bpmn": "is not supported; keep the data in the process variables",
    "C.5.0.bpmn": "is not supported; keep the data in the process variables",
    "C.6.0.bpmn": "compensation is not supported",
    "C.7.0.bpmn": "(ioSpecification) is not supported",
    "C.8.0.bpmn": "(ioSpecification) is not supported",
    "C.8.1.bpmn": "(ioSpecification) is not supported",
}
#: a process C.9.0 calls by key (not in its file)
MANUAL_CHECK = """<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  id="D" targetNamespace="t"><bpmn:process id="ManualCheck" isExecutable="true">
  <bpmn:startEvent id="S"/><bpmn:sequenceFlow id="F" sourceRef="S" targetRef="E"/>
  <bpmn:endEvent id="E"/></bpmn:process></bpmn:definitions>"""
#: … and one C.9.2 calls
REQUEST_DOCUMENT = MANUAL_CHECK.replace('"ManualCheck"', '"requestDocument_en"')


@pytest.fixture()
def noop(registry):
    op = FakeOperation("test.noop")
    registry.register(op)
    return op


@pytest.fixture()
def fire(engine, engine_sessions, db):
    runner = TimerRunner(engine, engine_sessions, worker_id="miwg")

    def fire_due():
        db.commit()
        runner.run_due()
        db.commit()
        db.expire_all()
    return fire_due


def test_every_reference_model_is_either_run_or_refused():
    assert sorted(p.name for p in CORPUS.glob("*.bpmn")) == sorted(
        [n for n, _p in RUNNABLE] + list(REFUSED))


@pytest.mark.parametrize("name, pool", RUNNABLE)
def test_reference_model_deploys_and_runs_to_the_end(engine, db, clock, noop, fire, name,
                                                     pool):
    engine.deploy(db, MANUAL_CHECK)
    engine.deploy(db, REQUEST_DOCUMENT)
    xml = executable(name, pool)
    errors = engine.validate(xml, session=db)
    assert errors == [], errors
    d = engine.deploy(db, xml)
    inst = run_to_end(engine, db, clock, d, fire)
    assert inst.status == Status.COMPLETED, (inst.status, inst.incident_message, inst.waiting)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_reference_model_with_unsupported_elements_is_refused_clearly(engine, db, noop, name):
    errors = engine.validate(executable(name), session=db)
    assert any(REFUSED[name] in e.message for e in errors), errors
