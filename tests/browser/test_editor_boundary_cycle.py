"""The editor's panel on a boundary timer: "Interrupt the activity" (bpmn:cancelActivity) is
a checkbox; with a cycle it says that only a timer that does not interrupt repeats (what
deploy allows), and unticking it makes the reminder deployable."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login
from .editor_support import open_editor, open_group, saved_xml, select_element
from .test_editor import new_process

pytestmark = pytest.mark.browser

XML = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:di="http://www.omg.org/spec/DD/20100524/DI" id="D" targetNamespace="t">
  <bpmn:process id="remind_cycle" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:userTask id="T"/>
    <bpmn:boundaryEvent id="Remind" attachedToRef="T"><bpmn:timerEventDefinition>
      <bpmn:timeCycle>R3/P1D</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:boundaryEvent>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="Di"><bpmndi:BPMNPlane id="Pl" bpmnElement="remind_cycle">
    <bpmndi:BPMNShape id="S_di" bpmnElement="S"><dc:Bounds x="100" y="100" width="36" height="36"/></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="T_di" bpmnElement="T"><dc:Bounds x="200" y="78" width="100" height="80"/></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="Remind_di" bpmnElement="Remind"><dc:Bounds x="232" y="140" width="36" height="36"/></bpmndi:BPMNShape>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>"""


def test_a_boundary_cycle_is_made_non_interrupting_in_the_panel(page, org):
    login(page, "admin@test.local")
    new_process(page, "remind_cycle", "Reminders")
    page.evaluate("xml => window.marshrutEditor.modeler.importXML(xml).then(() => null)", XML)
    open_editor(page)
    select_element(page, "Remind")
    open_group(page, "marshrut-timer-group")
    box = page.locator("#bio-properties-panel-marshrut-interrupting")
    expect(box).to_be_checked()
    group = page.locator('[data-group-id="group-marshrut-timer-group"]')
    expect(group).to_contain_text("Цикл повторяется только у таймера, который не прерывает задачу")
    box.uncheck()
    expect(box).not_to_be_checked()
    expect(group).to_contain_text("при каждом срабатывании")
    assert 'cancelActivity="false"' in saved_xml(page)
