"""The instance data limit: a process whose data grows without bound becomes an incident
naming the element that grew it, instead of running on and storing it all."""
from __future__ import annotations

import json

from engine.data import data_size, shorten
from engine.ports import StartRequest
from engine.runtime import Engine
from engine.store import ProcessHistory, Status

from .support import bpmn


def test_a_runaway_loop_becomes_an_incident_at_the_element_that_grew_it(
        registry, assigner, clock, db):
    engine = Engine(registry=registry, assigner=assigner, clock=clock, data_limit=300_000)
    d = engine.deploy(db, bpmn("growing_data.bpmn"))
    inst = engine.start(db, d, StartRequest({}, None, None))
    assert inst.status == Status.INCIDENT
    assert inst.incident_element_id == "Grow"
    assert "past the limit of 300000 bytes" in inst.incident_message
    # stopped at the first pass past the limit: the stored state is bounded by it and a step
    stored = len(json.dumps(inst.state))
    assert 300_000 < stored < 2 * 300_000 + 250_000
    passes = db.query(ProcessHistory).filter_by(instance_id=inst.id, element_id="Grow",
                                                event="left").count()
    assert passes == 2  # 200 KB, then 400 KB: the second pass went past 300 KB
    [incident] = db.query(ProcessHistory).filter_by(instance_id=inst.id,
                                                    event="incident").all()
    assert incident.element_id == "Grow" and "300000" in incident.message


def test_a_higher_limit_lets_it_grow_further(registry, assigner, clock, db):
    """The limit is what stops it (no other bound, such as the sandbox's, fires first)."""
    engine = Engine(registry=registry, assigner=assigner, clock=clock, data_limit=2_000_000)
    d = engine.deploy(db, bpmn("growing_data.bpmn"))
    inst = engine.start(db, d, StartRequest({}, None, None))
    assert inst.status == Status.INCIDENT and "2000000" in inst.incident_message
    assert len(engine.instance_data(db, inst.id)["items"]) == 400 * 10  # 10 passes of 200 KB


def test_shorten_and_data_size():
    big = {"items": ["x" * 5000] * 1000, "deep": [[[[[[[[[[1]]]]]]]]]], "n": 1}
    small = shorten(big, max_chars=100, max_items=10)
    assert len(json.dumps(small)) < 2000
    assert small["items"][-1] == "… 990 more items" and small["items"][0].endswith("…")
    assert small["n"] == 1
    assert data_size({"a": "é"}) == len('{"a":"\\u00e9"}')


def test_a_retry_stops_again_and_cancel_works(registry, assigner, clock, db):
    engine = Engine(registry=registry, assigner=assigner, clock=clock, data_limit=300_000)
    d = engine.deploy(db, bpmn("growing_data.bpmn"))
    inst = engine.start(db, d, StartRequest({}, None, None))
    assert inst.status == Status.INCIDENT
    engine.retry(db, inst.id)
    inst = engine.instance(db, inst.id)
    assert inst.status == Status.INCIDENT and "past the limit" in inst.incident_message
    engine.cancel(db, inst.id)
    assert engine.instance(db, inst.id).status == Status.CANCELLED
