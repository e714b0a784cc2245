"""The process editor in Chromium: the admin's routing rule from a blank diagram to a routed
deal, server errors on the faulty shape, and a manager who may look but not deploy."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from engine.store import ProcessInstance
from tests.factories import make_deal
from tests.web.api_support import api_for

from .conftest import login
from .editor_support import (
    click_shape,
    draw,
    has_marker,
    open_editor,
    open_group,
    saved_xml,
    select_element,
)

pytestmark = pytest.mark.browser


def new_process(page, key: str, name: str) -> None:
    page.goto("/processes/")
    form = page.locator("#new-process")
    form.locator("select[name=template]").select_option("blank")
    form.locator("input[name=key]").fill(key)
    form.locator("input[name=name]").fill(name)
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/processes/{key}/edit")
    open_editor(page)


def test_admin_draws_validates_dry_runs_and_deploys_the_big_deal_rule(page, app, db, org):
    login(page, "admin@test.local")
    new_process(page, "big_deal_approval", "Big deal approval")

    # start event: triggered by deal.created, picked in the panel
    click_shape(page, "StartEvent_1")
    open_group(page, "marshrut-trigger")
    page.locator("#bio-properties-panel-marshrut-start-kind").select_option("event")
    expect(page.locator("#bio-properties-panel-marshrut-trigger-entity")).to_have_value("deal")
    expect(page.locator("#bio-properties-panel-marshrut-trigger-event")).to_have_value("created")

    # the user task comes from our palette entry; the rest is drawn through the API
    page.locator('.entry[data-action="create.user-task"]').click()
    page.mouse.move(620, 300)
    page.mouse.move(640, 310)
    page.mouse.click(640, 310)
    task_id = page.evaluate("window.marshrutEditor.modeler.get('elementRegistry')"
                            ".filter(e => e.type === 'bpmn:UserTask')[0].id")
    ids = draw(page, [("gw", "bpmn:ExclusiveGateway", 330, 200), ("end_ok", "bpmn:EndEvent", 820, 200),
                      ("end_small", "bpmn:EndEvent", 330, 380)],
               [("f_in", "StartEvent_1", "gw"), ("f_big", "gw", task_id),
                ("f_done", task_id, "end_ok"), ("f_small", "gw", "end_small")])

    # condition "amount > 500,000" in the builder
    select_element(page, ids["f_big"])
    open_group(page, "marshrut-condition-group")
    page.locator('[data-test="cond-add-rule"]').click()
    page.locator('[data-test="cond-0-field"]').select_option("amount")
    page.locator('[data-test="cond-0-op"]').select_option(">")
    page.locator('[data-test="cond-0-value"]').fill("500,000")
    page.locator('[data-test="cond-0-value"]').press("Tab")
    expect(page.locator('[data-test="cond-preview"]')).to_have_text("deal.amount > 500000")

    # the other flow became the gateway's default when the condition was written (issue 13)
    select_element(page, ids["f_small"])
    open_group(page, "marshrut-condition-group")
    expect(page.locator("#bio-properties-panel-marshrut-default-flow")).to_be_checked()

    # the user task goes to the "sales_head" role
    select_element(page, task_id)
    open_group(page, "general")
    page.locator("#bio-properties-panel-name").fill("Approve the big deal")
    page.locator("#bio-properties-panel-name").press("Tab")
    open_group(page, "marshrut-assignment-group")
    page.locator("#bio-properties-panel-marshrut-assignment").select_option("role")
    target = page.locator("#bio-properties-panel-marshrut-assignee")
    expect(target.locator("option", has_text="Sales head")).to_have_count(1)
    target.select_option("sales_head")

    xml = saved_xml(page)
    assert 'marshrut:assignment="role"' in xml and 'marshrut:assignee="sales_head"' in xml
    assert "deal.amount &gt; 500000" in xml and f'default="{ids["f_small"]}"' in xml
    assert re.search(r'<bpmn:message id="Message_deal_created" name="deal.created"', xml)

    page.locator('[data-action="validate"]').click()
    expect(page.locator("#editor-status")).to_have_attribute("data-result", "valid")

    page.locator('[data-action="dryRun"]').click()
    dialog = page.locator("#dry-run-dialog")
    dialog.locator("#dry-run-typed summary").click()
    dialog.locator("[name='value:amount']").fill("600000")
    dialog.locator("[name='value:title']").fill("Big one")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator(".dry-task")).to_contain_text("Approve the big deal")
    expect(dialog.locator(".dry-task")).to_contain_text("Head of Sales")
    assert has_marker(page, ids["f_big"], "done") and has_marker(page, task_id, "active")
    dialog.locator("[data-close]").click()

    page.on("dialog", lambda d: d.accept())
    page.locator('[data-action="deploy"]').click()
    expect(page.locator("#editor-status")).to_have_attribute("data-result", "deployed:1")

    # a deal of 600,000 in the CRM is routed to the head of sales
    deal = make_deal(db, org.m1, title="Big one", amount="600000")
    db.commit()
    head = api_for(app, db, org.head)
    offered = head.get("/api/v1/tasks?candidate=1").get_json()["items"]
    assert [(t["name"], t["entity_id"]) for t in offered] == [("Approve the big deal", deal.id)]
    if any(r.rule == "/inbox" for r in app.url_map.iter_rules()):
        context = page.context.browser.new_context(base_url=page.url.split("/processes")[0])
        inbox = context.new_page()
        login(inbox, "head@test.local")
        inbox.goto("/inbox")
        expect(inbox.get_by_text("Approve the big deal").first).to_be_visible()
        context.close()

    # the instance viewer shows the path taken and where it waits
    inst = db.scalars(select(ProcessInstance).where(ProcessInstance.entity_id == deal.id)).one()
    page.goto(f"/processes/instances/{inst.id}")
    page.wait_for_function("() => window.bpmnReady !== undefined")  # a function: the CSP forbids eval
    page.evaluate("window.bpmnReady")
    for done in ("StartEvent_1", ids["gw"], ids["f_in"], ids["f_big"]):
        assert has_marker(page, done, "done"), done
    assert has_marker(page, task_id, "active")
    assert not has_marker(page, ids["f_small"], "done")
    expect(page.locator("#history")).to_contain_text("задача назначена")  # the event, in the user's language
    assert page.console_errors == []


def test_a_user_task_without_assignment_is_marked_with_the_server_message(page, org):
    login(page, "admin@test.local")
    new_process(page, "unassigned", "Unassigned")
    ids = draw(page, [("task", "bpmn:UserTask", 330, 200), ("end", "bpmn:EndEvent", 500, 200)],
               [("f1", "StartEvent_1", "task"), ("f2", "task", "end")])
    page.locator('[data-action="validate"]').click()
    expect(page.locator("#editor-status")).to_have_attribute("data-result", "invalid:1")
    badge = page.locator(f'.marshrut-error-badge[data-element="{ids["task"]}"]')
    expect(badge).to_have_attribute("title", re.compile("не указано, кому она назначается"))
    assert has_marker(page, ids["task"], "server-error")
    problem = page.locator(f'#editor-problems li[data-element="{ids["task"]}"]')
    expect(problem).to_have_count(1)  # the server and the linter say it once, not twice
    expect(problem).to_contain_text("Задача сотруднику: у задачи не указано, кому она назначается")
    # the lint rule said so before the server did
    assert ids["task"] in page.evaluate("Object.keys(window.marshrutEditor.lintIssues)")
    # deploying is refused the same way, and the draft survives a reload
    page.on("dialog", lambda d: d.accept())
    page.locator('[data-action="deploy"]').click()
    expect(page.locator("#editor-status")).to_have_attribute("data-result", "invalid:1")
    page.locator('[data-action="save"]').click()
    expect(page.locator("#editor-status")).to_have_attribute("data-result", re.compile(r"^saved:\d+$"))
    open_editor(page, "/processes/unassigned/edit")
    assert page.evaluate(f"!!window.marshrutEditor.modeler.get('elementRegistry').get('{ids['task']}')")


def test_a_manager_may_view_but_not_deploy(page, app, db, org):
    admin = api_for(app, db, org.admin)
    from tests.web.editor_support import approval

    assert admin.post("/api/v1/editor/deploy", {"bpmn_xml": approval()}).status_code == 201
    login(page, "m1@test.local")
    page.goto("/processes/")
    expect(page.locator("#process-list")).to_contain_text("big_deals")
    assert page.locator("#new-process").count() == 0
    page.goto("/processes/big_deals")
    assert page.locator('[data-test="deactivate"]').count() == 0
    page.goto("/processes/big_deals/edit")
    page.wait_for_function("() => window.bpmnReady !== undefined")  # a function: the CSP forbids eval
    page.evaluate("window.bpmnReady")
    assert page.locator('[data-action="deploy"]').count() == 0
    assert page.locator("#properties").count() == 0
    expect(page.locator('[data-test="view-only"]')).to_be_visible()
    # the API refuses the same session, and so does the page's activation form
    status = page.evaluate("""async xml => {
        const token = document.querySelector('meta[name=csrf-token]').content;
        const r = await fetch('/api/v1/editor/deploy', {method: 'POST', credentials: 'same-origin',
          headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
          body: JSON.stringify({bpmn_xml: xml})});
        return [r.status, (await r.json()).error.code];
    }""", approval())
    assert status == [403, "forbidden"]
    status = page.evaluate("""async () => {
        const token = document.querySelector('meta[name=csrf-token]').content;
        const r = await fetch('/processes/big_deals/versions/1/deactivate', {method: 'POST',
          credentials: 'same-origin', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
          body: 'csrf_token=' + encodeURIComponent(token)});
        return r.status;
    }""")
    assert status == 403
