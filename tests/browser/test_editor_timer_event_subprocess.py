"""The editor's panel on the start event of an event sub-process: "on a timer" gives a
duration ("after two days", what deploy accepts there), counted in working hours if wanted,
and no per-record selection (that belongs to a process's schedule)."""
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
  <bpmn:process id="esp_timer" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:subProcess id="Late" triggeredByEvent="true">
      <bpmn:startEvent id="LateStart" isInterrupting="false"/>
    </bpmn:subProcess>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="Di"><bpmndi:BPMNPlane id="Pl" bpmnElement="esp_timer">
    <bpmndi:BPMNShape id="S_di" bpmnElement="S"><dc:Bounds x="100" y="100" width="36" height="36"/></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="Late_di" bpmnElement="Late" isExpanded="true"><dc:Bounds x="200" y="60" width="300" height="160"/></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="LateStart_di" bpmnElement="LateStart"><dc:Bounds x="240" y="120" width="36" height="36"/></bpmndi:BPMNShape>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>"""


def test_a_timer_start_of_an_event_sub_process_is_a_duration(page, org):
    login(page, "admin@test.local")
    new_process(page, "esp_timer", "Event sub-process timer")
    page.evaluate("xml => window.marshrutEditor.modeler.importXML(xml).then(() => null)", XML)
    open_editor(page)
    select_element(page, "LateStart")
    open_group(page, "marshrut-trigger")
    page.locator("#bio-properties-panel-marshrut-start-kind").select_option("timer")
    expect(page.locator("#bio-properties-panel-marshrut-timer-kind")).to_have_value("timeDuration")
    expect(page.locator("#bio-properties-panel-marshrut-select-entity")).to_have_count(0)
    open_group(page, "marshrut-timer-group")
    expect(page.locator("#bio-properties-panel-marshrut-business-hours")).to_have_count(1)
    xml = saved_xml(page)
    assert "<bpmn:timeDuration" in xml and "P2D</bpmn:timeDuration>" in xml, xml
    # a process's own timer start stays a schedule, with its per-record selection
    select_element(page, "S")
    page.locator("#bio-properties-panel-marshrut-start-kind").select_option("timer")
    expect(page.locator("#bio-properties-panel-marshrut-timer-kind")).to_have_value("timeCycle")
    expect(page.locator("#bio-properties-panel-marshrut-select-entity")).to_have_count(1)
