"""One timeline per CRM record: field changes, comments, activities, tasks and process history.

``record_timeline`` merges, newest first:

- ``change`` — the record's audit events (field diffs, stage moves, conversion …); comments
  and new activities have their own items, so their audit twins are left out;
- ``comment`` and ``activity`` — the record's comments and activities;
- ``task`` — a user task of a process on the record: routed to whom, by which process and
  version; ``task_done`` when someone completed it (with the form's values);
- ``process`` — a process starting, finishing, being cancelled, stopping on an incident, a
  timer firing, a task being claimed or delegated.

Every item carries the process (name, version) behind it when a process acted, read from the
audit label (``automation.actors``) or the instance. The caller has checked that the user may
read the record; nothing here imports Flask.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_models.activity import Activity, AuditEvent, Comment
from engine.store import ProcessDefinition, ProcessHistory, ProcessInstance, ProcessTask

from .actors import parse_process_label

LIMIT = 200
#: Audit actions shown by their own timeline item (a comment, an activity) instead.
TWINS = ("commented", "activity_added")
PROCESS_EVENTS = ("started", "finished", "cancelled", "incident", "timer_fired", "claimed",
                  "delegated", "task_cancelled")


@dataclass(frozen=True)
class ProcessRef:
    key: str
    name: str
    version: int
    instance_id: int | None = None


@dataclass
class TimelineItem:
    at: dt.datetime
    kind: str  # change | comment | activity | task | task_done | process
    user_id: int | None = None  # who acted, when a person did
    label: str = ""  # who acted otherwise (a process label, "cli" …)
    process: ProcessRef | None = None
    row: Any = None  # the AuditEvent, Comment, Activity, ProcessTask or ProcessHistory
    data: dict[str, Any] = field(default_factory=dict)


def _definitions(session: Session, instance_ids: set[int]) -> dict[int, ProcessRef]:
    if not instance_ids:
        return {}
    rows = session.execute(
        select(ProcessInstance.id, ProcessDefinition.key, ProcessDefinition.name,
               ProcessDefinition.version)
        .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
        .where(ProcessInstance.id.in_(sorted(instance_ids))))
    return {iid: ProcessRef(key, name or key, version, iid) for iid, key, name, version in rows}


def _label_refs(session: Session, labels: set[str]) -> dict[str, ProcessRef]:
    """Audit labels of processes → the process (its name from the deployed definition)."""
    parsed = {lb: p for lb in labels if (p := parse_process_label(lb)) is not None}
    if not parsed:
        return {}
    names = {(k, v): n for k, v, n in session.execute(
        select(ProcessDefinition.key, ProcessDefinition.version, ProcessDefinition.name)
        .where(ProcessDefinition.key.in_(sorted({p.key for p in parsed.values()}))))}
    return {lb: ProcessRef(p.key, names.get((p.key, p.version)) or p.key, p.version,
                           p.instance_id) for lb, p in parsed.items()}


def record_timeline(session: Session, entity: str, record_id: int,
                    limit: int = LIMIT) -> list[TimelineItem]:
    """The record's merged timeline, newest first, at most ``limit`` items."""
    items: list[TimelineItem] = []
    events = list(session.scalars(
        select(AuditEvent).where(AuditEvent.entity_type == entity,
                                 AuditEvent.entity_id == record_id,
                                 AuditEvent.action.not_in(TWINS))
        .order_by(AuditEvent.id.desc()).limit(limit)))
    refs = _label_refs(session, {e.actor_label for e in events if e.actor_user_id is None})
    for e in events:
        items.append(TimelineItem(e.at, "change", e.actor_user_id, e.actor_label,
                                  refs.get(e.actor_label), e))
    for c in session.scalars(select(Comment).where(
            Comment.entity_type == entity, Comment.entity_id == record_id)
            .order_by(Comment.id.desc()).limit(limit)):
        items.append(TimelineItem(c.created_at, "comment", c.author_id, c.author_label, None, c))
    for a in session.scalars(select(Activity).where(
            Activity.entity_type == entity, Activity.entity_id == record_id)
            .order_by(Activity.id.desc()).limit(limit)):
        items.append(TimelineItem(a.created_at, "activity", a.created_by_id, "", None, a))
    instances = set(session.scalars(select(ProcessInstance.id).where(
        ProcessInstance.entity_type == entity, ProcessInstance.entity_id == record_id)))
    procs = _definitions(session, instances)
    if instances:
        for t in session.scalars(select(ProcessTask).where(
                ProcessTask.instance_id.in_(sorted(instances))).order_by(ProcessTask.id)):
            ref = procs.get(t.instance_id)
            items.append(TimelineItem(t.created_at, "task", None, "", ref, t, {
                "assignee_id": t.assignee_id, "candidate_ids": list(t.candidate_ids or [])}))
            if t.completed_at is not None and t.completed_by is not None:
                items.append(TimelineItem(t.completed_at, "task_done", t.completed_by, "", ref,
                                          t, {"result": dict(t.result or {})}))
        for h in session.scalars(select(ProcessHistory).where(
                ProcessHistory.instance_id.in_(sorted(instances)),
                ProcessHistory.event.in_(PROCESS_EVENTS))
                .order_by(ProcessHistory.id.desc()).limit(limit)):
            items.append(TimelineItem(h.at, "process", h.user_id, "", procs.get(h.instance_id),
                                      h, {"event": h.event}))
    items.sort(key=_write_order, reverse=True)
    return items[:limit]


#: Rows written in the same instant, in the order they are written (a process starts, routes
#: a task; a completed task comes before the process finishing).
_RANK = {"change": 1, "task": 2, "activity": 3, "comment": 4, "task_done": 5, "process": 6}


def _write_order(item: TimelineItem) -> tuple[dt.datetime, int, int]:
    rank = 0 if item.kind == "process" and item.data.get("event") == "started" \
        else _RANK.get(item.kind, 9)
    return item.at, rank, getattr(item.row, "id", 0) or 0
