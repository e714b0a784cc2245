"""Executable variants of the MIWG reference models (``/work/shared/corpus/miwg``).

The reference models are drawings: no process is executable, tasks name nobody, gateways
have no (or non-Python) conditions. :func:`executable` fills in what the engine needs,
mechanically and without touching the model's shape: the chosen process becomes the
executable one; user/manual tasks go to a test user; service tasks call ``test.noop``;
business rule tasks become plain tasks; each gateway's first outgoing flow becomes its
default and the others get ``False`` (so a run takes the first path); a sub-process without a
start event gets one before the elements nothing flows into; events referring to missing
messages get one; a multi-instance without a collection runs twice; an empty timer waits an
hour. :func:`run_to_end` then completes tasks, delivers messages and fires timers until the
instance finishes.
"""
from __future__ import annotations

from typing import Any

from lxml import etree

from engine.ports import StartRequest
from engine.store import Status
from tests.web.editor_support import CORPUS  # one definition of where it is

B = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
M = "{http://marshrut.dev/schema/bpmn/1.0}"
GATEWAYS = ("exclusiveGateway", "inclusiveGateway")


def _local(el: Any) -> str:
    return el.tag[len(B):] if isinstance(el.tag, str) and el.tag.startswith(B) else ""


def executable(name: str, process_id: str | None = None) -> str:
    root = etree.fromstring((CORPUS / name).read_bytes())
    processes = root.findall(f"{B}process")
    chosen = next(p for p in processes if process_id in (None, p.get("id")))
    for p in processes:
        p.set("isExecutable", "true" if p is chosen else "false")
    messages = {m.get("id") for m in root.iter(f"{B}message")}
    for el in list(chosen.iter()):
        kind = _local(el)
        if kind in ("userTask", "manualTask"):
            el.set(f"{M}assignment", "user")
            el.set(f"{M}assignee", "m1@test.local")
        elif kind == "serviceTask" and el.get(f"{M}operation") is None:
            el.set(f"{M}operation", "test.noop")
        elif kind == "businessRuleTask":
            el.tag = f"{B}task"
        elif kind in GATEWAYS:
            _gateway(chosen, el)
        elif kind in ("messageEventDefinition", "sendTask", "receiveTask"):
            owner = el.getparent() if kind.endswith("Definition") else el
            ref = el.get("messageRef") or f"Msg_{owner.get('id')}"
            if ref not in messages:
                root.insert(0, etree.Element(f"{B}message", id=ref))
                messages.add(ref)
            el.set("messageRef", ref)
        elif kind == "signalEventDefinition":
            ref = el.get("signalRef") or "Signal_miwg"
            if root.find(f"{B}signal[@id='{ref}']") is None:
                root.insert(0, etree.Element(f"{B}signal", id=ref, name=f"miwg.{ref}"))
            el.set("signalRef", ref)
        elif kind == "multiInstanceLoopCharacteristics":
            if el.find(f"{B}loopCardinality") is None and \
                    el.find(f"{B}loopDataInputRef") is None:
                card = etree.SubElement(el, f"{B}loopCardinality")
                card.text = "2"
        elif kind == "timerEventDefinition":
            if not any((c.text or "").strip() for c in el):
                for c in list(el):
                    el.remove(c)
                etree.SubElement(el, f"{B}timeDuration").text = "PT1H"
        elif kind == "subProcess" and el.find(f"{B}startEvent") is None:
            _add_start(el)
    for m in root.iter(f"{B}message"):
        if not (m.get("name") or "").strip():
            m.set("name", f"miwg.{m.get('id')}")
    return etree.tostring(root, encoding="unicode")


def _gateway(process: Any, gateway: Any) -> None:
    flows = [f for f in process.iter(f"{B}sequenceFlow") if f.get("sourceRef") ==
             gateway.get("id")]
    if len(flows) < 2:
        return
    gateway.set("default", flows[0].get("id"))
    for i, f in enumerate(flows):
        for c in f.findall(f"{B}conditionExpression"):
            f.remove(c)
        if i:
            etree.SubElement(f, f"{B}conditionExpression").text = "False"


def _add_start(sub: Any) -> None:
    flows = list(sub.iter(f"{B}sequenceFlow"))
    targets = {f.get("targetRef") for f in flows}
    flow_nodes = ("task", "userTask", "manualTask", "serviceTask", "scriptTask", "sendTask",
                  "receiveTask", "subProcess", "callActivity", "exclusiveGateway",
                  "parallelGateway", "inclusiveGateway", "eventBasedGateway",
                  "intermediateCatchEvent", "intermediateThrowEvent", "endEvent",
                  "businessRuleTask")
    nodes = [c for c in sub if _local(c) in flow_nodes and c.get("id")
             and c.get("id") not in targets and c.get("triggeredByEvent") != "true"]
    sources = {f.get("sourceRef") for f in flows}
    if sub.find(f"{B}endEvent") is None:  # an end event after what leads nowhere
        end = etree.SubElement(sub, f"{B}endEvent", id=f"{sub.get('id')}_end")
        for i, n in enumerate(c for c in sub if _local(c) in flow_nodes and c.get("id")
                              and c.get("id") not in sources and c is not end):
            etree.SubElement(sub, f"{B}sequenceFlow", id=f"{sub.get('id')}_ef{i}",
                             sourceRef=n.get("id"), targetRef=end.get("id"))
    start = etree.Element(f"{B}startEvent", id=f"{sub.get('id')}_start")
    sub.insert(0, start)
    for i, n in enumerate(nodes or [sub.find(f"{B}endEvent")]):  # collapsed: start → end
        etree.SubElement(sub, f"{B}sequenceFlow", id=f"{sub.get('id')}_sf{i}",
                         sourceRef=start.get("id"), targetRef=n.get("id"))


def run_to_end(engine: Any, db: Any, clock: Any, definition: Any, fire_timers: Any,
               steps: int = 60) -> Any:
    """Start and drive an instance to its end: complete its tasks, deliver the messages it
    waits for, else let three days pass and fire the due timers."""
    message = definition.triggers[0] if definition.triggers else None
    inst = engine.start(db, definition, StartRequest({}, message=message))
    for _ in range(steps):
        if inst.status != Status.WAITING:
            return inst
        tasks = engine.tasks(db, instance_id=inst.id)
        if tasks:
            user = tasks[0].assignee_id or tasks[0].candidate_ids[0]
            engine.complete(db, tasks[0].id, user, {})
            continue
        waits = inst.waiting or []
        msg = next((w for w in waits if w["type"] == "MessageEventDefinition"), None)
        if msg is not None:
            engine.send_message(db, inst.id, msg["event"], {})
            continue
        if any(w["type"] == "TimerEventDefinition" for w in waits):
            clock.advance(3 * 24 * 3600)
            fire_timers()
            continue
        return inst
    return inst
