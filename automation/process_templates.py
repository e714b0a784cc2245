"""Starting points for new processes: ``processes/templates/*.bpmn`` and the shipped rules.

``instantiate(name, key=..., title=...)`` returns the template's BPMN with its process renamed
to ``key`` / ``title`` (and the diagram pointed at it), so a copy of a shipped rule becomes a
new process instead of a new version of the shipped one.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from crm_models.errors import NotFound, ValidationFailed
from engine.extensions import B
from engine.safe_xml import parse_xml

from .drafts import KEY_RE
from .seed import PROCESSES_DIR


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    path: Path


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template("blank", "Blank", "A start event; draw the rest.",
             PROCESSES_DIR / "templates" / "blank.bpmn"),
    Template("large_deal_routing", "Large-deal routing",
             "A deal above a threshold goes to the corporate-accounts manager.",
             PROCESSES_DIR / "large_deal_routing.bpmn"),
    Template("key_client_routing", "Key-client routing",
             "Deals and leads of the key client go to the head of Sales, who must contact the "
             "client within two hours.",
             PROCESSES_DIR / "key_client_routing.bpmn"),
    Template("lead_followup", "Lead follow-up",
             "Every new lead gets a first call; unreached leads are flagged.",
             PROCESSES_DIR / "templates" / "lead_followup.bpmn"),
)}


_TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя", (
    "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch  y  e yu ya").split(" "),
    strict=True))


def key_from_name(name: str, taken: Callable[[str], bool]) -> str:
    """A process key made from its name ("Ключевой клиент" → "klyuchevoy_klient"), made unique
    with a number when ``taken(key)``; for the "new process" form, where the key may be left
    empty."""
    text = "".join(_TRANSLIT.get(ch, ch) for ch in (name or "").strip().lower())
    base = re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:60] or "process"
    if not re.match(r"[a-z_]", base):
        base = f"p_{base}"
    key, n = base, 2
    while taken(key):
        key, n = f"{base}_{n}", n + 1
    return key


def instantiate(name: str, *, key: str, title: str) -> str:
    """The template's BPMN for a new process ``key`` named ``title``.

    Raises ``NotFound`` for an unknown template and ``ValidationFailed`` for a bad key/title.
    """
    template = TEMPLATES.get(name)
    if template is None:
        raise NotFound(f"No template '{name[:60]}'; use one of: " + ", ".join(TEMPLATES))
    errors = {}
    if not KEY_RE.match(key or ""):
        errors["key"] = ("must start with a letter or '_' and contain only letters, digits, "
                         "'_', '-' or '.' (at most 200)")
    title = (title or "").strip()
    if not title or len(title) > 300:
        errors["name"] = "must be 1 to 300 characters"
    if errors:
        raise ValidationFailed(errors)
    root = parse_xml(template.path.read_bytes(), what=f"template {name}")
    process = root.find(f"{B}process")
    assert process is not None, f"template {name} has no process"
    old = process.get("id")
    process.set("id", key)
    process.set("name", title)
    for el in root.iter():
        for attr in ("bpmnElement", "processRef"):
            if el.get(attr) == old:
                el.set(attr, key)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")
