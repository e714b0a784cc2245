"""CRM events reach the running instances of their record: "wait until the deal is won"."""
from __future__ import annotations

from crm_models.services.crm import change_deal_stage
from engine.store import Status
from tests.factories import SYSTEM, make_deal

from .support import instances_of

WAIT_WON = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="D" targetNamespace="t">
  <bpmn:message id="Msg" name="deal.created"/>
  <bpmn:message id="Msg_stage" name="deal.stage_changed"/>
  <bpmn:process id="wait_won" isExecutable="true">
    <bpmn:startEvent id="Start_1"><bpmn:messageEventDefinition messageRef="Msg"/></bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Moved"/>
    <bpmn:intermediateCatchEvent id="Moved"><bpmn:messageEventDefinition messageRef="Msg_stage"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Moved" targetRef="Won"/>
    <bpmn:intermediateCatchEvent id="Won">
      <bpmn:conditionalEventDefinition><bpmn:condition>deal["stage"] == "WON"</bpmn:condition></bpmn:conditionalEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Won" targetRef="Thank"/>
    <bpmn:serviceTask id="Thank" marshrut:operation="crm.add_comment">
      <bpmn:extensionElements><marshrut:parameter name="text" value="Won, thank the client"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="F4" sourceRef="Thank" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_a_stage_change_moves_only_the_instance_of_that_deal(db, demo, engine):
    engine.deploy(db, WAIT_WON)
    db.commit()
    a = make_deal(db, demo.m1, amount="1000", stage="NEW")
    b = make_deal(db, demo.m1, amount="1000", stage="NEW")
    db.commit()
    [ia] = instances_of(db, "wait_won", entity_id=a.id)
    [ib] = instances_of(db, "wait_won", entity_id=b.id)
    assert {w["element"] for w in ia.waiting} == {"Moved"}

    change_deal_stage(db, SYSTEM, a.id, "PREPARATION")
    db.commit()  # dispatched after commit: the message, then the condition is not met
    db.expire_all()
    assert {w["element"] for w in db.get(type(ia), ia.id).waiting} == {"Won"}
    assert {w["element"] for w in db.get(type(ib), ib.id).waiting} == {"Moved"}

    change_deal_stage(db, SYSTEM, a.id, "WON")
    db.commit()
    db.expire_all()
    assert db.get(type(ia), ia.id).status == Status.COMPLETED
    assert db.get(type(ib), ib.id).status == Status.WAITING
    data = engine.instance_data(db, ia.id)
    assert data["deal"]["stage"] == "WON"
