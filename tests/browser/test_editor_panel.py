"""The properties panel on existing drawings: service operations with typed parameters, user
task details and form, conditions the builder reads back (or leaves raw), DMN tables."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.api_support import api_for
from tests.web.editor_support import approval

from .conftest import login
from .editor_support import draw, open_editor, open_group, saved_xml, select_element

pytestmark = pytest.mark.browser


def test_service_task_user_task_and_raw_condition_of_the_lead_template(page, org):
    login(page, "admin@test.local")
    page.goto("/processes/")
    form = page.locator("#new-process")
    form.locator("select[name=template]").select_option("lead_followup")
    form.locator("input[name=key]").fill("leads_first_call")
    form.locator("input[name=name]").fill("Leads: first call")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/processes/leads_first_call/edit")
    open_editor(page)

    select_element(page, "Task_NotifyHead")
    open_group(page, "marshrut-service-group")
    expect(page.locator("#bio-properties-panel-marshrut-operation")).to_have_value("crm.notify")
    expect(page.locator('[data-test="param-title-value"]')).to_have_value(
        "Не удалось дозвониться по новому лиду")
    role = page.locator('[data-test="param-role-value"]')
    expect(role.locator("option", has_text="Manager")).to_have_count(1)
    role.select_option("manager")
    page.locator('[data-test="param-user-mode"]').select_option("expression")
    page.locator('[data-test="param-user-value"]').fill("lead.responsible_id")
    page.locator('[data-test="param-user-value"]').press("Tab")

    select_element(page, "Task_CallLead")
    open_group(page, "marshrut-assignment-group")
    expect(page.locator("#bio-properties-panel-marshrut-assignment")).to_have_value("responsible")
    open_group(page, "marshrut-task-group")
    due = page.locator("#bio-properties-panel-marshrut-due")
    expect(due).to_have_value("1")
    due.fill("2")
    due.press("Tab")
    page.locator("#bio-properties-panel-marshrut-priority").select_option("low")
    open_group(page, "marshrut-form-group")
    expect(page.locator('[data-test^="form-field-"][data-test$="-name"]')).to_have_count(2)
    page.locator('[data-test="form-field-add"]').click()

    select_element(page, "Flow_NoAnswer")
    open_group(page, "marshrut-condition-group")
    expect(page.locator("#marshrut-condition-raw")).to_have_value("outcome == 'no_answer'")

    xml = saved_xml(page)
    assert '<marshrut:parameter name="role" value="manager"' in xml
    assert '<marshrut:parameter name="user" expression="lead.responsible_id"' in xml
    assert 'marshrut:due="PT2H"' in xml and 'marshrut:priority="low"' in xml
    assert '<marshrut:formField name="field3" type="string" required="false"' in xml
    page.locator('[data-action="validate"]').click()
    expect(page.locator("#editor-status")).to_have_attribute("data-result", "valid")
    assert page.console_errors == []


def test_the_builder_reads_nested_groups_back_and_a_decision_table_is_made(page, app, db, org):
    admin = api_for(app, db, org.admin)
    condition = "deal.amount > 100 and (deal.source == 'web' or deal.stage == 'NEW')"
    assert admin.post("/api/v1/editor/deploy",
                      {"bpmn_xml": approval(condition=condition)}).status_code == 201
    login(page, "admin@test.local")
    open_editor(page, "/processes/big_deals/edit")
    select_element(page, "Flow_Big")
    open_group(page, "marshrut-condition-group")
    expect(page.locator('[data-test="cond-combinator"]')).to_have_value("and")
    expect(page.locator('[data-test="cond-0-field"]')).to_have_value("amount")
    expect(page.locator('[data-test="cond-1-combinator"]')).to_have_value("or")
    expect(page.locator('[data-test="cond-1-1-field"]')).to_have_value("stage")
    expect(page.locator('[data-test="cond-preview"]')).to_have_text(condition)
    page.locator('[data-test="cond-1-combinator"]').select_option("and")
    expect(page.locator('[data-test="cond-preview"]')).to_have_text(
        "deal.amount > 100 and (deal.source == 'web' and deal.stage == 'NEW')")

    ids = draw(page, [("rules", "bpmn:BusinessRuleTask", 500, 420)], [])
    select_element(page, ids["rules"])
    open_group(page, "marshrut-decision-group")
    page.locator('[data-test="dmn-new"]').click()
    dialog = page.locator("dialog.marshrut-dmn-dialog")
    expect(dialog.locator(".tjs-table")).to_be_visible()
    dialog.locator('[data-action="apply"]').click()
    expect(dialog).to_have_count(0)
    decision = page.locator("#bio-properties-panel-marshrut-decision")
    expect(decision).to_have_value(f"decision_{ids['rules']}")
    files = page.evaluate("window.marshrutEditor.modeler.get('dmnStore').files")
    assert len(files) == 1 and f'<decision id="decision_{ids["rules"]}"' in files[0]
    page.locator('[data-action="save"]').click()
    expect(page.locator("#editor-status")).to_have_attribute("data-result", re.compile(r"^saved:\d+$"))
    open_editor(page, "/processes/big_deals/edit")
    assert page.evaluate("window.marshrutEditor.modeler.get('dmnStore').decisions()[0].id") == \
        f"decision_{ids['rules']}"
    assert page.console_errors == []
