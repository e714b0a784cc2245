"""Issue 13, the process editor's bugs one by one, in Chromium with the Russian UI: "Проверить"
agrees with the linter, drafts survive leaving the page, the shipped large-deal condition is
shown in the builder with its labelled threshold, the diagram opens clear of the palette, and
the panel and linter speak Russian with proper plurals."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from automation.seed import PROCESSES_DIR
from tests.web.api_support import api_for

from .conftest import login
from .editor_support import draw, open_editor, select_element

pytestmark = pytest.mark.browser

LARGE = (PROCESSES_DIR / "large_deal_routing.bpmn").read_text("utf-8")


def new_blank(page, name: str) -> None:
    page.goto("/processes/")
    page.locator("#new-process input[name=name]").fill(name)
    page.locator("#new-process button[type=submit]").click()
    page.wait_for_url("**/edit")
    open_editor(page)


def test_validate_never_says_no_problems_while_the_linter_marks_the_drawing(page, org):
    login(page, "admin@test.local")
    new_blank(page, "Только старт")
    page.locator('[data-action="validate"]').click()
    status = page.locator("#editor-status")
    expect(status).to_have_attribute("data-result", re.compile(r"^invalid:\d+$"))
    assert "Ошибок нет" not in status.inner_text()
    expect(page.locator("#editor-problems")).to_contain_text("нет конечного события")
    # the lint button counts in Russian plural forms, never "1 Errors"
    button = page.locator(".bjsl-button")
    expect(button).to_have_text(re.compile(r"\d+ ошиб(ка|ки|ок)"))
    assert "Error" not in button.inner_text()
    # and deploy refuses what "Проверить" refuses
    page.on("dialog", lambda d: d.accept())
    page.locator('[data-action="deploy"]').click()
    expect(status).to_have_attribute("data-result", re.compile(r"^invalid:\d+$"))


def test_a_drawing_is_kept_as_the_draft_and_restored_on_return(page, app, db, org):
    login(page, "admin@test.local")
    new_blank(page, "Черновик")
    key = page.url.rsplit("/", 2)[-2]
    ids = draw(page, [("task", "bpmn:UserTask", 330, 200)], [("f", "StartEvent_1", "task")])
    # leave at once: no "Сохранить черновик" click
    page.goto("/processes/")
    admin = api_for(app, db, org.admin)
    for _ in range(50):
        draft = admin.get(f"/api/v1/editor/drafts/{key}").get_json()
        if ids["task"] in draft.get("bpmn_xml", ""):
            break
        page.wait_for_timeout(100)
    else:
        pytest.fail("the drawing was not kept as the draft")
    open_editor(page, f"/processes/{key}/edit")
    assert page.evaluate(f"!!window.marshrutEditor.modeler.get('elementRegistry').get('{ids['task']}')")
    # and the autosave keeps working after a change
    draw(page, [("end", "bpmn:EndEvent", 520, 200)], [("f2", ids["task"], "end")])
    expect(page.locator("#editor-autosave")).to_have_attribute("data-revision", re.compile(r"\d+"))


def test_the_large_deal_rule_opens_in_the_builder_fitted_and_in_russian(page, app, db, org):
    admin = api_for(app, db, org.admin)
    assert admin.post("/api/v1/editor/deploy", {"bpmn_xml": LARGE}).status_code == 201
    login(page, "admin@test.local")
    open_editor(page, "/processes/large_deal_routing/edit")

    # fitted: every shape is inside the canvas and clear of the palette
    boxes = page.evaluate("""() => {
      const palette = document.querySelector('#canvas .djs-palette').getBoundingClientRect();
      const canvas = document.querySelector('#canvas').getBoundingClientRect();
      return [palette.right, canvas.right, canvas.bottom, [...document.querySelectorAll(
        '#canvas .djs-shape:not(.djs-frame)')].map(e => e.getBoundingClientRect())
        .filter(r => r.width > 0).map(r => [r.left, r.right, r.bottom])];
    }""")
    palette_right, canvas_right, canvas_bottom, shapes = boxes
    assert shapes and all(left > palette_right and right <= canvas_right + 1
                          and bottom <= canvas_bottom + 1 for left, right, bottom in shapes)

    select_element(page, "Flow_Large")
    panel = page.locator("#properties")
    expect(panel.locator('[data-test="cond-builder-panel"]')).to_be_visible()
    assert panel.locator('[data-test="cond-raw"]').count() == 0
    expect(panel.locator('[data-test="cond-0-op"]')).to_have_value("rose_above")
    threshold = panel.locator('[data-test="cond-0-value"]')
    expect(threshold).to_have_value("threshold")
    expect(threshold.locator("option:checked")).to_have_text("Порог суммы сделки, ₽")
    expect(panel.locator('[data-test="cond-1-field"] option:checked')).to_have_text(
        "Ответственного уже назначил процесс")
    # Russian headings: the panel's type label and groups, no "General"/"Documentation"
    expect(panel.locator(".bio-properties-panel-header-type")).to_have_text(
        re.compile("^поток", re.I))
    text = panel.inner_text()
    assert "Основное" in text and "General" not in text and "Documentation" not in text

    # the process variables are labelled rows, not bare name/type/value
    select_element(page, "large_deal_routing")
    expect(panel.locator('[data-test="variable-0-label"]')).to_have_value("Порог суммы сделки, ₽")
    expect(panel.locator('[data-test="variable-0-value"]')).to_have_value("1000000")
    assert page.console_errors == []
