"""Moving running instances to a new version: dry run first, element mapping, per-instance
report, refusals that name the element."""
from __future__ import annotations

from engine.migration import migrate
from engine.ports import StartRequest
from engine.store import Status, TaskStatus

from .test_bpmn_coverage import events, reload


def version(review: str = "Review", extra: str = "", kind: str = "userTask") -> str:
    step = (f'<bpmn:sequenceFlow id="F2" sourceRef="{review}" targetRef="Note"/>'
            '<bpmn:scriptTask id="Note"><bpmn:script>noted = True</bpmn:script></bpmn:scriptTask>'
            '<bpmn:sequenceFlow id="F3" sourceRef="Note" targetRef="End_1"/>' if extra else
            f'<bpmn:sequenceFlow id="F2" sourceRef="{review}" targetRef="End_1"/>')
    assignment = ' marshrut:assignment="responsible"' if kind in ("userTask", "manualTask") \
        else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="D" targetNamespace="t">
  <bpmn:process id="review" isExecutable="true">
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="{review}"/>
    <bpmn:{kind} id="{review}" name="Review it"{assignment}/>
    {step}
    <bpmn:endEvent id="End_1"/>
  </bpmn:process>
</bpmn:definitions>"""


DATA = {"deal": {"responsible": {"id": 11}}}


def test_dry_run_then_move_with_a_mapping(engine, db):
    v1 = engine.deploy(db, version())
    a = engine.start(db, v1, StartRequest(DATA))
    b = engine.start(db, v1, StartRequest(DATA))
    [task_a] = engine.tasks(db, instance_id=a.id)
    engine.complete(db, engine.tasks(db, instance_id=b.id)[0].id, 11, {})  # b has finished
    v2 = engine.deploy(db, version("Review_v2", extra="note"))
    reload(engine, db)

    [unmapped] = migrate(engine, db, [a.id], v2)
    assert (unmapped["ok"], unmapped["problems"]) == (
        False, ["Review: v2 has no element Review; map it to one"])

    dry = migrate(engine, db, [a.id, b.id], v2, {"Review": "Review_v2"})
    assert dry[0] | {"problems": []} == {
        "instance_id": a.id, "from_version": 1, "to_version": 2, "ok": True,
        "migrated": False, "moves": [{"from": "Review", "to": "Review_v2"}], "problems": []}
    assert dry[1]["problems"] == [f"instance {b.id} is completed"]
    assert a.definition_id == v1.id  # a dry run changes nothing

    [done] = migrate(engine, db, [a.id], v2, {"Review": "Review_v2"}, dry_run=False,
                     user_id=1)
    assert done["migrated"] is True and a.definition_id == v2.id
    reload(engine, db)
    [row] = engine.tasks(db, instance_id=a.id)
    assert (row.id, row.element_id, row.status) == (task_a.id, "Review_v2", TaskStatus.OPEN)
    engine.complete(db, row.id, 11, {})
    assert a.status == Status.COMPLETED
    assert engine.instance_data(db, a.id)["noted"] is True  # the step only v2 has
    assert ("migrated", None) in events(db, a.id)


def test_same_ids_move_without_a_mapping_and_kinds_must_match(engine, db):
    v1 = engine.deploy(db, version())
    inst = engine.start(db, v1, StartRequest(DATA))
    v2 = engine.deploy(db, version(extra="note"))
    v3 = engine.deploy(db, version(kind="manualTask"))
    [bad] = migrate(engine, db, [inst.id], v3, dry_run=False)
    assert bad["problems"] == ["Review (UserTask) cannot become Review (ManualTask)"]
    assert inst.definition_id == v1.id
    [ok] = migrate(engine, db, [inst.id], v2, dry_run=False)
    assert ok["migrated"] and ok["moves"] == [{"from": "Review", "to": "Review"}]
    [row] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, row.id, 11, {})
    assert engine.instance_data(db, inst.id)["noted"] is True


def test_an_instance_inside_a_sub_process_is_not_moved(engine, db):
    from .support import bpmn, deal
    v1 = engine.deploy(db, bpmn("plain_manual_sub.bpmn"))
    inst = engine.start(db, v1, StartRequest(deal(), "deal", 7))
    v2 = engine.deploy(db, bpmn("plain_manual_sub.bpmn"))
    [report] = migrate(engine, db, [inst.id], v2, dry_run=False)
    assert report["problems"] == ["it stands inside a sub-process or call activity; those "
                                  "instances cannot be moved yet"]
    assert inst.definition_id == v1.id
    [other] = migrate(engine, db, [999999], v2)
    assert other["problems"] == ["process instance 999999 not found"]
