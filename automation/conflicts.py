"""Which active definitions react to the same CRM event and write the same field.

Two routing rules that both set a deal's responsible on ``deal.created`` are not an error —
they run in (priority, key) order and the later one sees what the earlier did — but an admin
must know about it, so the process list and the editor show this report. The fields an
operation writes are read from the BPMN's service tasks: ``crm.assign_responsible`` writes
``responsible_id``, ``crm.change_stage`` ``stage``, ``crm.update_fields`` the keys of its
literal ``fields`` (``*`` when they come from an expression), ``crm.convert_lead`` ``status``.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.extensions import B, Problems, read_service_task
from engine.safe_xml import UnsafeXml, parse_xml
from engine.store import ProcessDefinition

FIXED_WRITES = {
    "crm.assign_responsible": ("responsible_id",),
    "crm.change_stage": ("stage",),
    "crm.convert_lead": ("status",),
}


@dataclass(frozen=True)
class Write:
    field: str
    element_id: str
    operation: str


def writes_of(bpmn_xml: str) -> list[Write]:
    """The CRM fields the service tasks of a BPMN document write."""
    try:
        root = parse_xml(bpmn_xml, what="BPMN")
    except UnsafeXml:
        return []
    out: list[Write] = []
    for el in root.iter(f"{B}serviceTask"):
        config = read_service_task(el, Problems())
        eid = el.get("id", "")
        for name in FIXED_WRITES.get(config.operation, ()):
            out.append(Write(name, eid, config.operation))
        if config.operation == "crm.update_fields":
            for p in config.params:
                if p.name != "fields":
                    continue
                try:
                    keys = list(json.loads(p.value)) if p.value is not None else ["*"]
                except (ValueError, TypeError):
                    keys = ["*"]
                out += [Write(str(k), eid, config.operation) for k in keys]
    return out


def conflict_report(definitions: Iterable[ProcessDefinition]) -> list[dict[str, Any]]:
    """``[{"event", "field", "definitions": [{"key", "version", "priority", "elements"}],
    "order", "message"}]`` for every (event, field) written by two or more definitions."""
    by_pair: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for d in definitions:
        if not d.active:
            continue
        writes = writes_of(d.bpmn_xml)
        for event in d.triggers or ():
            for w in writes:
                fields = {w.field}
                if w.field == "*":
                    fields = {"*"}
                for f in fields:
                    entry = by_pair[(event, f)].setdefault(d.id, {
                        "id": d.id, "key": d.key, "version": d.version,
                        "priority": d.priority, "elements": []})
                    if w.element_id not in entry["elements"]:
                        entry["elements"].append(w.element_id)
    wildcard = {ev: defs for (ev, f), defs in by_pair.items() if f == "*"}
    report = []
    for (event, field), defs in sorted(by_pair.items()):
        if field == "*":
            continue
        merged = dict(defs)
        for d_id, entry in wildcard.get(event, {}).items():
            merged.setdefault(d_id, entry)
        if len(merged) < 2:
            continue
        ordered = sorted(merged.values(), key=lambda e: (e["priority"], e["key"]))
        order = " → ".join(f"{e['key']} ({e['priority']})" for e in ordered)
        report.append({
            "event": event, "field": field, "definitions": ordered, "order": order,
            "message": (f"{len(ordered)} processes write {field} on {event}; they run in "
                        f"this order: {order}. A later one overrides an earlier one unless its "
                        "conditions check what is already set (e.g. deal.responsible_set_by)."),
        })
    return report
