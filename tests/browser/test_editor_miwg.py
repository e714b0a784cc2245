"""MIWG round trip: each of the 21 reference models opens in the editor without error and saves
back with its elements, shapes, lanes and extensions (counted per namespace) preserved.

One browser page serves all 21 files (importXML + saveXML through ``marshrutEditor.roundTrip``);
the counting is done here with lxml.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.conftest import empty_database
from tests.factories import make_org
from tests.web.editor_support import CORPUS, MIWG_FILES, read_bpmn

from .conftest import CHROMIUM_ARGS, login  # noqa: F401  (same browser set-up)
from .editor_support import open_editor

pytestmark = pytest.mark.browser

FILES = MIWG_FILES
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DI = {"http://www.omg.org/spec/BPMN/20100524/DI", "http://www.omg.org/spec/DD/20100524/DC",
      "http://www.omg.org/spec/DD/20100524/DI"}


XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def census(xml: str) -> dict[str, Counter[str]]:
    """What a file holds: semantic BPMN elements by name, DI shapes/edges, lanes, and every
    element and attribute of a foreign namespace (extensions) by qualified name.

    Two spellings count as one: ``<expression xsi:type="tFormalExpression">`` is written back
    as ``<formalExpression>``. A reference element naming no element of the file (C.8.1's
    ``outMessageRef`` "triso:unspecified") is not counted: bpmn-js cannot resolve it, says so
    in an import warning, and a dangling reference carries nothing to preserve. Nor is an
    extension attribute that repeats, in the element's own namespace, an unprefixed attribute
    of the same name and value (C.8.1's ``triso:allowedValues constraintsType="enumeration"
    triso:constraintsType="enumeration"``): moddle keeps one of the twins.
    """
    root = etree.fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", xml).encode("utf-8"))
    ids = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    out: dict[str, Counter[str]] = {"bpmn": Counter(), "di": Counter(), "extension": Counter()}
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        ns, local = el.tag[1:].split("}", 1) if el.tag.startswith("{") else ("", el.tag)
        if ns == BPMN:
            if local == "expression" and (el.get(XSI_TYPE) or "").endswith("tFormalExpression"):
                local = "formalExpression"
            if local.endswith("Ref") and len(el) == 0 and (el.text or "").strip() not in ids:
                continue
            out["bpmn"][local] += 1
        elif ns in DI:
            if local in ("BPMNShape", "BPMNEdge"):
                out["di"][f"{local}:{el.get('bpmnElement')}"] += 1
        else:
            out["extension"][f"{{{ns}}}{local}"] += 1
        for name, value in el.attrib.items():
            if name.startswith("{") and not name.startswith(("{" + BPMN, "{http://www.w3.org/")):
                attr_ns, attr_local = name[1:].split("}", 1)
                if attr_ns == ns and el.get(attr_local) == value:
                    continue  # the twin of an unprefixed attribute
                out["extension"][f"@{name}"] += 1
    return out


@pytest.fixture(scope="module")
def miwg_page(browser: Any, live_server: str, _migrated_app: Any) -> Iterator[Any]:
    """A designer's editor page, opened once for the whole corpus."""
    from automation.drafts import save_draft
    from tests.factories import actor

    empty_database(_migrated_app)
    from crm_models.setup import ensure_reference_data

    with _migrated_app.extensions["db_sessionmaker"]() as s:
        ensure_reference_data(s)
        org = make_org(s)
        save_draft(s, actor(s, org.admin), bpmn_xml=(
            Path(__file__).resolve().parents[2] / "processes" / "templates" / "blank.bpmn"
        ).read_text())
        s.commit()
    context = browser.new_context(base_url=live_server, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, "admin@test.local")
    open_editor(page, "/processes/blank/edit")
    page.page_errors = errors
    yield page
    context.close()


def test_the_corpus_is_there():
    assert len(FILES) == 21, f"expected the 21 MIWG reference models in {CORPUS}"


@pytest.mark.parametrize("name", FILES)
def test_miwg_file_round_trips(miwg_page, name):
    original = read_bpmn(CORPUS / name)
    result = miwg_page.evaluate("xml => window.marshrutEditor.roundTrip(xml)", original)
    before, after = census(original), census(result["xml"])
    assert after["bpmn"] == before["bpmn"]
    assert after["extension"] == before["extension"]
    assert after["di"] == before["di"]
    assert before["bpmn"]["lane"] == after["bpmn"]["lane"]
    assert miwg_page.page_errors == []
