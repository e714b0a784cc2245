"""BPMN drawings for the editor tests, as the browser editor writes them."""
from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

#: The MIWG reference models; CI lays shared/ beside the clone (a worktree finds it further up).
CORPUS = next((p / "shared" / "corpus" / "miwg" for p in Path(__file__).resolve().parents[3:]
               if (p / "shared" / "corpus" / "miwg").is_dir()),
              Path(__file__).resolve().parents[3] / "shared" / "corpus" / "miwg")
MIWG_FILES = sorted(p.name for p in CORPUS.glob("*.bpmn"))


def read_bpmn(path: Path) -> str:
    """The file as text, decoded with its declared encoding (several MIWG files are Latin-1)."""
    data = path.read_bytes()
    m = re.search(rb'encoding=["\']([A-Za-z0-9_.-]+)["\']', data[:200])
    text = data.decode(m.group(1).decode() if m else "utf-8")
    return re.sub(r'^(\s*<\?xml[^>]*encoding=["\'])[^"\']+', r"\1UTF-8", text, count=1)

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
        'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
        'xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="Defs" '
        'targetNamespace="http://marshrut.dev/tests">\n')


def approval(key: str = "big_deals", *, condition: str = "deal.amount > 500000",
             assignment: str | None = "role", assignee: str = "sales_head",
             service: bool = False, name: str = "Big deals") -> str:
    """deal.created → gateway → [condition] → (optional comment service task →) user task
    "Approve" → end; the gateway's default flow → end."""
    attrs = ""
    if assignment:
        attrs = f' marshrut:assignment="{assignment}"'
        if assignee:
            attrs += f" marshrut:assignee={quoteattr(assignee)}"
    first = "Task_Comment" if service else "Task_Approve"
    service_xml = (
        '<bpmn:serviceTask id="Task_Comment" name="Comment" marshrut:operation="crm.add_comment">'
        '<bpmn:extensionElements><marshrut:parameter name="text" value="big one"/>'
        '</bpmn:extensionElements></bpmn:serviceTask>\n'
        '<bpmn:sequenceFlow id="Flow_Commented" sourceRef="Task_Comment" '
        'targetRef="Task_Approve"/>\n') if service else ""
    return (HEAD + '<bpmn:message id="Msg_deal_created" name="deal.created"/>\n'
            f'<bpmn:process id="{key}" name={quoteattr(name)} isExecutable="true">\n'
            '<bpmn:startEvent id="Start_Deal"><bpmn:messageEventDefinition '
            'messageRef="Msg_deal_created"/></bpmn:startEvent>\n'
            '<bpmn:exclusiveGateway id="Gateway_Big" default="Flow_Small"/>\n'
            f'<bpmn:userTask id="Task_Approve" name="Approve"{attrs}/>\n'
            + service_xml +
            '<bpmn:endEvent id="End_Approved"/><bpmn:endEvent id="End_Small"/>\n'
            '<bpmn:sequenceFlow id="Flow_In" sourceRef="Start_Deal" targetRef="Gateway_Big"/>\n'
            f'<bpmn:sequenceFlow id="Flow_Big" sourceRef="Gateway_Big" targetRef="{first}">'
            f'<bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression>'
            '</bpmn:sequenceFlow>\n'
            '<bpmn:sequenceFlow id="Flow_Small" sourceRef="Gateway_Big" targetRef="End_Small"/>\n'
            '<bpmn:sequenceFlow id="Flow_Done" sourceRef="Task_Approve" '
            'targetRef="End_Approved"/>\n'
            '</bpmn:process>\n</bpmn:definitions>\n')
