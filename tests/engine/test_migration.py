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


def sub_v2() -> str:
    """plain_manual_sub with the sub-process and its manual task renamed, and a step added
    inside the sub-process after the task."""
    from .support import bpmn
    return (bpmn("plain_manual_sub.bpmn")
            .replace('"Prepare"', '"Prepare2"').replace('"Print"', '"Print2"')
            .replace('<bpmn:sequenceFlow id="P3" sourceRef="Print2" targetRef="Prep_end"/>',
                     '<bpmn:sequenceFlow id="P3" sourceRef="Print2" targetRef="Check"/>'
                     '<bpmn:scriptTask id="Check"><bpmn:script>checked = True</bpmn:script>'
                     '</bpmn:scriptTask>'
                     '<bpmn:sequenceFlow id="P4" sourceRef="Check" targetRef="Prep_end"/>'))


def test_an_instance_inside_an_embedded_sub_process_moves_with_its_inner_ids(engine, db):
    from .support import bpmn, deal
    v1 = engine.deploy(db, bpmn("plain_manual_sub.bpmn"))
    inst = engine.start(db, v1, StartRequest(deal(), "deal", 7))
    [print_task] = engine.tasks(db, instance_id=inst.id)
    v2 = engine.deploy(db, sub_v2())
    reload(engine, db)
    [unmapped] = migrate(engine, db, [inst.id], v2)
    assert unmapped["problems"] == ["Prepare: v2 has no element Prepare; map it to one"]
    [half] = migrate(engine, db, [inst.id], v2, {"Prepare": "Prepare2"})
    assert half["problems"] == ["Print: v2 has no element Print; map it to one"]
    [done] = migrate(engine, db, [inst.id], v2, {"Prepare": "Prepare2", "Print": "Print2"},
                     dry_run=False)
    assert (done["ok"], done["migrated"]) == (True, True), done
    assert {"from": "Print", "to": "Print2"} in done["moves"]
    assert {"from": "Prepare", "to": "Prepare2"} in done["moves"]
    reload(engine, db)
    [row] = engine.tasks(db, instance_id=inst.id)
    assert (row.id, row.element_id, row.status) == (print_task.id, "Print2", TaskStatus.OPEN)
    engine.complete(db, row.id, 11, {})
    reload(engine, db)
    [approve] = engine.tasks(db, instance_id=inst.id)
    assert approve.element_id == "Approve"
    engine.complete(db, approve.id, 11, {})
    assert inst.status == Status.COMPLETED
    data = engine.instance_data(db, inst.id)
    assert data["checked"] is True and data["prepared"] == 1  # the step only v2 has


def test_same_ids_inside_a_sub_process_move_without_a_mapping(engine, db):
    from .support import bpmn, deal
    v1 = engine.deploy(db, bpmn("plain_manual_sub.bpmn"))
    inst = engine.start(db, v1, StartRequest(deal(), "deal", 7))
    v2 = engine.deploy(db, bpmn("plain_manual_sub.bpmn").replace('"Mark"', '"Mark2"'))
    # a passed element renamed at the same place: the library's alignment finds it
    [ok] = migrate(engine, db, [inst.id], v2, dry_run=False)
    assert ok["migrated"] and inst.definition_id == v2.id
    assert {"from": "Print", "to": "Print"} in ok["moves"]
    [row] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, row.id, 11, {})
    assert engine.tasks(db, instance_id=inst.id)[0].element_id == "Approve"
    [other] = migrate(engine, db, [999999], v2)
    assert other["problems"] == ["process instance 999999 not found"]


def test_an_instance_inside_a_call_activity_is_refused_by_name(engine, db):
    from .support import bpmn, deal
    engine.deploy(db, bpmn("greet_contact.bpmn"))
    single = bpmn("call_parent.bpmn")
    a, b = single.index("<bpmn:multiInstanceLoopCharacteristics>"), \
        single.index("</bpmn:multiInstanceLoopCharacteristics>")
    single = single[:a] + single[b + len("</bpmn:multiInstanceLoopCharacteristics>"):]
    v1 = engine.deploy(db, single)
    inst = engine.start(db, v1, StartRequest(deal() | {"contact": {"name": "Anna"}}, "deal", 7))
    assert inst.status == Status.WAITING, inst.incident_message
    v2 = engine.deploy(db, single)
    [report] = migrate(engine, db, [inst.id], v2, dry_run=False)
    assert report["problems"] == ["it stands inside the call activity Each_contact; "
                                  "instances inside call activities cannot be moved"]
    assert inst.definition_id == v1.id
