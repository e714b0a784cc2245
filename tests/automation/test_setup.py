"""Assembly: init-db deploys the shipped processes once; least-loaded counts the engine's tasks;
the shipped BPMN files carry a full diagram."""
from __future__ import annotations

from lxml import etree
from sqlalchemy import select

from automation.seed import PROCESSES_DIR, SHIPPED, deploy_shipped
from automation.setup import open_task_counts
from engine.store import ProcessDefinition
from tests.factories import make_deal

from .support import tasks_of, user_task_process

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "di": "http://www.omg.org/spec/DD/20100524/DI"}


def test_init_db_demo_deploys_the_shipped_processes_once(app, db):
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["init-db", "--demo"])
        assert result.exit_code == 0, result.output
    db.rollback()
    rows = db.scalars(select(ProcessDefinition).order_by(ProcessDefinition.key)).all()
    assert [(d.key, d.version, d.active, d.priority) for d in rows] == [
        ("key_client_routing", 1, True, 10), ("large_deal_routing", 1, True, 20),
        ("stale_deal_followup", 1, True, 100)]
    assert rows[1].variables == {"threshold": "1000000", "sales_department": "Отдел продаж"}
    # the demo's own deals predate the processes: nothing was routed or assigned
    assert tasks_of(db) == []
    result = runner.invoke(args=["dispatch"])
    assert result.exit_code == 0 and "0 events dispatched" in result.output


def test_deploy_shipped_keeps_an_admins_deactivation(app, db, demo, engine):
    engine.deactivate(db, "large_deal_routing")
    db.commit()
    deploy_shipped(db, engine)
    db.commit()
    assert [d.key for d in engine.definitions(db, active=True)] == [
        "key_client_routing", "stale_deal_followup"]


def test_shipped_diagrams_have_a_shape_for_every_node_and_an_edge_for_every_flow():
    for name in SHIPPED:
        root = etree.parse(str(PROCESSES_DIR / name)).getroot()
        process = root.find("bpmn:process", NS)
        nodes = {el.get("id") for el in process if el.get("id") and
                 etree.QName(el).localname not in ("sequenceFlow", "extensionElements",
                                                   "documentation")}
        flows = {el.get("id") for el in process.findall("bpmn:sequenceFlow", NS)}
        shapes = {el.get("bpmnElement") for el in root.iterfind(".//bpmndi:BPMNShape", NS)}
        edges = root.findall(".//bpmndi:BPMNEdge", NS)
        assert nodes == shapes, name
        assert {e.get("bpmnElement") for e in edges} == flows, name
        assert all(len(e.findall("di:waypoint", NS)) >= 2 for e in edges), name


def test_least_loaded_counts_open_engine_tasks(db, org, engine):
    engine.deploy(db, user_task_process("load", assignment="least_loaded", assignee="manager",
                                        message="deal.created"))
    db.commit()
    for _ in range(5):
        make_deal(db, org.m1)
        db.commit()
    got = [t.assignee_id for t in tasks_of(db)]
    members = sorted([org.corporate.id, org.m1.id, org.m2.id, org.outsider.id])
    assert got == members + [members[0]]  # one each, then the lowest id again
    counts = open_task_counts(db, members)
    assert counts == {members[0]: 2, members[1]: 1, members[2]: 1, members[3]: 1}
    assert open_task_counts(db, []) == {}
