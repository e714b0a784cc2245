"""Where instances went, for the instance viewer and the per-version heatmap.

Only the engine's own tables are read (history, tasks, instances): the workflow state is never
loaded, so a trace costs a few indexed queries however large the instance.

* ``instance_trace`` — one instance: the elements it completed (with how often), the sequence
  flows it took, where it stands now (open user tasks, awaited events), its incident, and
  the progress of its multi-instance activities and loops ("2/3"). Elements inside
  sub-processes are traced like the others (ids are unique in a file; the viewer draws
  expanded sub-processes inline).
* ``heatmap`` — one definition version: per element, how many instances passed it, how many
  stand there now, and how many are stuck there with an incident.

Flows: a gateway's history line names the flows it took (``took flow F to T``, written by
``engine.executor``); any other element's outgoing flow counts as taken when its target was
reached afterwards.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from engine.extensions import B
from engine.progress import PATTERN as PROGRESS
from engine.safe_xml import UnsafeXml, parse_xml
from engine.store import ProcessHistory, ProcessInstance, ProcessTask, Status, TaskStatus

_TOOK = re.compile(r"took flow (\S+) to ")
#: history events that show the instance reached an element
_REACHED = ("left", "completed", "assigned", "waiting", "incident", "retry_scheduled")
#: history events that show the instance went through an element: the engine's "left", and
#: "completed" of a user or manual task done in the inbox (the engine writes no "left" then)
_PASSED = ("left", "completed")


def flow_graph(bpmn_xml: str) -> dict[str, tuple[str, str]]:
    """``{flow id: (source id, target id)}`` of every sequence flow in the file."""
    try:
        root = parse_xml(bpmn_xml, what="the BPMN file")
    except UnsafeXml:
        return {}
    return {f.get("id"): (f.get("sourceRef", ""), f.get("targetRef", ""))
            for f in root.iter(f"{B}sequenceFlow") if f.get("id")}


def taken_flows(bpmn_xml: str, history: Iterable[ProcessHistory]) -> list[str]:
    """The sequence flows an instance took, judged from its history (see module docstring)."""
    rows = list(history)
    left = {h.element_id for h in rows if h.event in _PASSED and h.element_id}
    reached = {h.element_id for h in rows if h.event in _REACHED and h.element_id}
    named: dict[str, set[str]] = {}
    for h in rows:
        if h.event == "left" and h.element_id and h.message:
            found = set(_TOOK.findall(h.message))
            if found:
                named.setdefault(h.element_id, set()).update(found)
    out = []
    for fid, (src, dst) in flow_graph(bpmn_xml).items():
        if src in named:
            if fid in named[src]:
                out.append(fid)
        elif src in left and dst in reached:
            out.append(fid)
    return sorted(out)


def instance_trace(session: Session, instance: ProcessInstance, bpmn_xml: str
                   ) -> dict[str, Any]:
    """``{"done", "counts", "flows", "active", "incidents"}`` of one instance (JSON)."""
    history = list(session.scalars(select(ProcessHistory).where(
        ProcessHistory.instance_id == instance.id).order_by(ProcessHistory.id)))
    counts = Counter(h.element_id for h in history if h.event == "left" and h.element_id)
    done_by_hand = Counter(h.element_id for h in history
                           if h.event == "completed" and h.element_id)
    for element, n in done_by_hand.items():
        counts.setdefault(element, n)  # a user task: its completions (a "left" counts once)
    open_tasks = session.scalars(select(ProcessTask.element_id).where(
        ProcessTask.instance_id == instance.id,
        ProcessTask.status.in_(TaskStatus.ACTIVE))).all()
    active = list(dict.fromkeys([*open_tasks, *(w.get("element") for w in instance.waiting or []
                                               if w.get("element")) ]))
    incidents = []
    if instance.incident_element_id and instance.status in Status.OPEN:
        incidents.append({"element_id": instance.incident_element_id,
                          "message": instance.incident_message or ""})
    return {"done": sorted(counts), "counts": dict(counts),
            "flows": taken_flows(bpmn_xml, history), "active": active,
            "incidents": incidents, "progress": loop_progress(history)}


def loop_progress(history: Iterable[ProcessHistory]) -> dict[str, str]:
    """``{element id: "2/3"}`` for multi-instance activities (the latest run's instances
    done / all), ``{element id: "×4"}`` for standard loops (iterations), from the notes
    ``engine.progress`` writes into the history."""
    out: dict[str, str] = {}
    for h in history:
        if not h.element_id or not h.message or h.event not in ("left", "completed"):
            continue
        m = PROGRESS.search(h.message)
        if m is None:
            continue
        done, total, iteration = m.groups()
        out[h.element_id] = f"{done}/{total}" if total else f"×{iteration}"
    return out


def heatmap(session: Session, definition_id: int) -> dict[str, Any]:
    """Per-element counts over every instance of one definition version (JSON)."""
    of_def = ProcessInstance.definition_id == definition_id
    passed = session.execute(
        select(ProcessHistory.element_id, func.count(distinct(ProcessHistory.instance_id)))
        .join(ProcessInstance, ProcessInstance.id == ProcessHistory.instance_id)
        .where(of_def, ProcessHistory.event.in_(_PASSED),
               ProcessHistory.element_id.is_not(None))
        .group_by(ProcessHistory.element_id)).all()
    waiting = session.execute(
        select(ProcessTask.element_id, func.count())
        .join(ProcessInstance, ProcessInstance.id == ProcessTask.instance_id)
        .where(of_def, ProcessTask.status.in_(TaskStatus.ACTIVE))
        .group_by(ProcessTask.element_id)).all()
    stuck = session.execute(
        select(ProcessInstance.incident_element_id, func.count())
        .where(of_def, ProcessInstance.status.in_(Status.OPEN),
               ProcessInstance.incident_element_id.is_not(None))
        .group_by(ProcessInstance.incident_element_id)).all()
    statuses = dict(session.execute(select(ProcessInstance.status, func.count())
                                    .where(of_def).group_by(ProcessInstance.status)).all())
    return {"instances": sum(statuses.values()), "statuses": statuses,
            "passed": {e: n for e, n in passed}, "active": {e: n for e, n in waiting},
            "incidents": {e: n for e, n in stuck}}
