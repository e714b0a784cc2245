"""The process pages around the editor: the list with its counts, import and export, the
heatmap of a version, comparing versions, and the instance viewer's incident and cancel."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from engine.store import ProcessInstance
from tests.factories import make_deal
from tests.web.api_support import api_for
from tests.web.editor_support import approval

from .conftest import login
from .editor_support import has_marker, open_editor

pytestmark = pytest.mark.browser


def wait_viewer(page):
    page.wait_for_function("() => window.bpmnReady !== undefined")  # a function: the CSP forbids eval
    page.evaluate("window.bpmnReady")


def test_list_heatmap_compare_and_an_incident_cancelled_in_the_viewer(page, app, db, org):
    admin = api_for(app, db, org.admin)
    assert admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval()}).status_code == 201
    assert admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval(
        condition="deal.amount > 100000")}).status_code == 201
    assert admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval(
        key="broken_rule", condition="deal.nope > 1")}).status_code == 201
    make_deal(db, org.m1, amount="600000")
    make_deal(db, org.m1, amount="5")
    db.commit()

    login(page, "admin@test.local")
    page.goto("/processes/")
    big = page.locator('#process-list tr[data-key="big_deals"] td')
    expect(big.nth(2)).to_have_text("2")  # versions
    expect(big.nth(4)).to_have_text("1")  # running: the big deal waits for approval
    broken = page.locator('#process-list tr[data-key="broken_rule"] td')
    expect(broken.nth(5)).to_have_text("2")  # both deals stopped on the broken condition

    page.goto("/processes/big_deals/versions/2")
    wait_viewer(page)
    expect(page.locator('.marshrut-count[data-element="Gateway_Big"]').first).to_have_text("2")
    expect(page.locator('.marshrut-count.active[data-element="Task_Approve"]')).to_have_text("1")
    assert has_marker(page, "Gateway_Big", "heat-5")

    page.goto("/processes/big_deals/compare?from=1&to=2")
    wait_viewer(page)
    expect(page.locator("#diff tr.diff-changed")).to_contain_text("Flow_Big")
    expect(page.locator("#diff")).to_contain_text("deal.amount > 500000")
    assert page.locator('#canvas-to .djs-element[data-element-id="Flow_Big"].diff-changed').count()

    inst = db.scalars(select(ProcessInstance).where(ProcessInstance.status == "incident")
                      .order_by(ProcessInstance.id)).first()
    page.goto(f"/processes/instances/{inst.id}")
    wait_viewer(page)
    expect(page.locator("#incident")).to_contain_text("Flow_Big")
    assert has_marker(page, "Gateway_Big", "incident") or has_marker(page, "Flow_Big", "done") \
        or page.locator(".djs-element.incident").count() == 1
    page.on("dialog", lambda d: d.accept())
    page.locator("form[action$='/cancel'] button").click()
    expect(page.locator("#instance-status")).to_have_attribute("data-status", "cancelled")
    expect(page.locator("#instance-status")).to_have_text("отменён")
    assert page.console_errors == []


def test_import_a_bpmn_file_and_export_it_again(page, org, tmp_path):
    source = tmp_path / "imported.bpmn"
    source.write_text(approval(key="imported_rule", name="Imported rule"), encoding="utf-8")
    login(page, "admin@test.local")
    page.goto("/processes/")
    page.locator("#import-process input[type=file]").set_input_files(str(source))
    page.locator("#import-process button[type=submit]").click()
    page.wait_for_url("**/processes/imported_rule/edit")
    open_editor(page)
    assert page.evaluate("!!window.marshrutEditor.modeler.get('elementRegistry').get('Task_Approve')")
    with page.expect_download() as info:
        page.locator('[data-action="exportBpmn"]').click()
    exported = info.value.path().read_text(encoding="utf-8")
    assert 'marshrut:assignee="sales_head"' in exported and "<bpmndi:BPMNShape" in exported
    with page.expect_download() as info:
        page.locator('[data-action="exportSvg"]').click()
    assert "<svg" in info.value.path().read_text(encoding="utf-8")
    # a second import of the same key is refused while its draft exists
    page.goto("/processes/")
    page.locator("#import-process input[type=file]").set_input_files(str(source))
    page.locator("#import-process button[type=submit]").click()
    expect(page.locator(".flash-error")).to_contain_text("imported_rule")


MI_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="D" targetNamespace="t">
  <bpmn:process id="call_each" name="Call each contact" isExecutable="true">
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Sub"/>
    <bpmn:subProcess id="Sub">
      <bpmn:startEvent id="Sub_start"/>
      <bpmn:sequenceFlow id="S1" sourceRef="Sub_start" targetRef="Call"/>
      <bpmn:userTask id="Call" name="Call" marshrut:assignment="user" marshrut:assignee="m1@test.local">
        <bpmn:multiInstanceLoopCharacteristics isSequential="true">
          <bpmn:loopDataInputRef>contacts</bpmn:loopDataInputRef>
          <bpmn:inputDataItem id="contact" name="contact"/>
        </bpmn:multiInstanceLoopCharacteristics>
      </bpmn:userTask>
      <bpmn:sequenceFlow id="S2" sourceRef="Call" targetRef="Sub_end"/>
      <bpmn:endEvent id="Sub_end"/>
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="F2" sourceRef="Sub" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_the_viewer_draws_sub_process_and_multi_instance_progress(page, app, db, org):
    from engine.ports import StartRequest
    engine = app.extensions["engine"]
    d = engine.deploy(db, MI_PROCESS)
    inst = engine.start(db, d, StartRequest({"contacts": [{"n": 1}, {"n": 2}, {"n": 3}]}))
    [task] = engine.tasks(db, instance_id=inst.id)
    engine.complete(db, task.id, org.m1.id, {})
    db.commit()
    login(page, "admin@test.local")
    page.goto(f"/processes/instances/{inst.id}")
    wait_viewer(page)
    expect(page.locator('.marshrut-count.progress[data-element="Call"]')).to_have_text("1/3")
    # inside the sub-process (drawn on its own plane when the file has no layout)
    assert page.evaluate("window.marshrutViewer.viewer.get('canvas')"
                         ".hasMarker('Sub_start', 'done')")
    assert page.evaluate("window.marshrutViewer.viewer.get('canvas')"
                         ".hasMarker('Call', 'active')")
    assert page.console_errors == []
