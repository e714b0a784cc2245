"""Driving the process editor from Playwright: set up shapes through bpmn-js's API, then work
the properties panel and toolbar as a person would (see the bpmn-js notes, §8)."""
from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

#: Creates shapes next to each other and connects them; returns the ids it made.
DRAW = """
([specs, links]) => {
  const m = window.marshrutEditor.modeler;
  const modeling = m.get('modeling'), factory = m.get('elementFactory');
  const registry = m.get('elementRegistry'), canvas = m.get('canvas');
  const root = canvas.getRootElement();
  const ids = {};
  for (const [name, type, x, y] of specs) {
    const shape = modeling.createShape(factory.createShape({ type }), { x, y }, root);
    ids[name] = shape.id;
  }
  for (const [name, from, to] of links) {
    const source = registry.get(ids[from] || from), target = registry.get(ids[to] || to);
    ids[name] = modeling.connect(source, target).id;
  }
  return ids;
}
"""


def open_editor(page: Any, path: str | None = None) -> None:
    """Go to ``path`` (or stay) and wait until the modeler has imported the diagram."""
    if path is not None:
        page.goto(path)
    page.wait_for_function("() => window.bpmnReady !== undefined")  # a function: the CSP forbids eval
    page.evaluate("window.bpmnReady")
    expect(page.locator("#properties .bio-properties-panel-header")).to_be_visible()


def draw(page: Any, shapes: list[tuple[str, str, int, int]],
         links: list[tuple[str, str, str]]) -> dict[str, str]:
    return page.evaluate(DRAW, [shapes, links])


def select_element(page: Any, element_id: str) -> None:
    """Select through the canvas API and wait until the panel shows that element (a click on a
    connection's exact pixels is flaky). Right after an import the panel may miss the first
    selection (notes §9), so it is selected again until the panel follows."""
    field = page.locator("#bio-properties-panel-id")
    for _attempt in range(3):
        page.evaluate("id => { const m = window.marshrutEditor.modeler;"
                      " m.get('selection').select(null);"
                      " m.get('selection').select(m.get('elementRegistry').get(id)); }", element_id)
        try:
            expect(field).to_have_value(element_id, timeout=2000)
            return
        except AssertionError:
            continue
    expect(field).to_have_value(element_id)


def click_shape(page: Any, element_id: str) -> None:
    """Click a shape, unless it is already selected (a click on the selected shape deselects
    it; a new blank diagram opens with its start event selected)."""
    if page.evaluate("id => window.marshrutEditor.modeler.get('selection').get()"
                     ".map(e => e.id).join() === id", element_id):
        expect(page.locator("#bio-properties-panel-id")).to_have_value(element_id)
        return
    page.locator(f'.djs-element[data-element-id="{element_id}"]').first.click()
    expect(page.locator("#bio-properties-panel-id")).to_have_value(element_id)


def open_group(page: Any, group_id: str) -> None:
    """Expand a properties-panel group (groups start collapsed)."""
    header = page.locator(f'[data-group-id="group-{group_id}"] .bio-properties-panel-group-header')
    entries = page.locator(f'[data-group-id="group-{group_id}"] .bio-properties-panel-group-entries')
    if "open" not in (entries.get_attribute("class") or ""):
        header.click()
    expect(page.locator(f'[data-group-id="group-{group_id}"] .bio-properties-panel-group-entries.open')
           ).to_be_visible()


def saved_xml(page: Any) -> str:
    return page.evaluate("window.marshrutEditor.modeler.saveXML({format: true}).then(r => r.xml)")


def has_marker(page: Any, element_id: str, marker: str) -> bool:
    return page.locator(f'.djs-element[data-element-id="{element_id}"].{marker}').count() > 0
