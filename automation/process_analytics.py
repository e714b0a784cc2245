"""Process analytics: per definition version, per manager and per department — time from
routing to first contact, SLA breaches, tasks done/overdue, incidents — and the average time
spent in each element of one version.

What is counted (a hand calculation on fixed data must give the same):

* The instances *started* in the period (``ReportFilter``), of one definition (``key``) or
  all, one version (``definition_id``) or all.
* Visibility: an instance on a CRM record counts only if the actor may read the record; an
  instance without a record only for those who may design processes.
* **Manager** of an instance: the responsible user of its record (now); department: his.
  Task figures go to the task's user (who completed it, else the assignee) instead.
* **Routing → first contact**: routed at the instance's first ``assigned`` history entry
  (else its start); first contact = the first activity (call, e-mail, meeting, to-do) on the
  record created at or after that. Average in hours over the contacted instances.
* **SLA**: instances that armed a boundary timer; breached = one of them fired. Rate =
  breached / armed.
* **Tasks**: done = completed; overdue = completed after its due time, or still open past it.
* **Incidents**: instances that had an ``incident`` history entry.
* **Time per element**: for each ``left`` history entry, the time since the element began
  waiting (its ``waiting`` entry) or else since the instance's previous entry; averaged.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_models.activity import Activity
from crm_models.entities import ENTITY_MODELS
from crm_models.org import Department
from crm_models.permissions import Actor
from crm_models.services.reports import ReportFilter, department_users, user_labels
from engine.store import (
    ProcessDefinition,
    ProcessHistory,
    ProcessInstance,
    ProcessTask,
    TaskStatus,
    Timer,
    TimerKind,
    TimerStatus,
)

RECORD_ENTITIES = ("lead", "deal", "contact", "company")


@dataclass
class Figures:
    key: Any
    label: str
    instances: int = 0
    completed: int = 0
    incidents: int = 0
    contacted: int = 0
    contact_seconds: float = 0.0
    sla_armed: int = 0
    sla_breached: int = 0
    tasks_done: int = 0
    tasks_overdue: int = 0

    @property
    def first_contact_hours(self) -> float | None:
        return round(self.contact_seconds / self.contacted / 3600, 2) if self.contacted \
            else None

    @property
    def sla_breach_rate(self) -> float | None:
        return round(100.0 * self.sla_breached / self.sla_armed, 1) if self.sla_armed \
            else None


@dataclass
class ElementTime:
    element_id: str
    passes: int
    average_seconds: float


@dataclass
class ProcessReport:
    by_version: list[Figures]
    by_manager: list[Figures]
    by_department: list[Figures]
    total: Figures
    elements: list[ElementTime] = field(default_factory=list)  # of one version only


def _visible(session: Session, actor: Actor, rows: list[Any]) -> list[Any]:
    """The instances whose record the actor may read (see the module docstring)."""
    by_entity: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        if r.entity_type in RECORD_ENTITIES and r.entity_id is not None:
            by_entity[r.entity_type].add(r.entity_id)
    readable: dict[str, set[int]] = {}
    for entity, ids in by_entity.items():
        model = ENTITY_MODELS[entity]
        readable[entity] = set()
        wanted = sorted(ids)
        for i in range(0, len(wanted), 500):
            readable[entity] |= set(session.scalars(select(model.id).where(
                model.id.in_(wanted[i:i + 500]), actor.scope(model, "read"))))
    designer = actor.has_flag("design_processes")
    return [r for r in rows if (r.entity_id in readable.get(r.entity_type, ())
                                if r.entity_type in RECORD_ENTITIES and r.entity_id
                                else designer)]


def _responsibles(session: Session, rows: list[Any]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    by_entity: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        if r.entity_type in RECORD_ENTITIES and r.entity_id is not None:
            by_entity[r.entity_type].add(r.entity_id)
    for entity, ids in by_entity.items():
        model = ENTITY_MODELS[entity]
        wanted = sorted(ids)
        for i in range(0, len(wanted), 500):
            for rid, resp in session.execute(select(model.id, model.responsible_id).where(
                    model.id.in_(wanted[i:i + 500]))):
                out[(entity, rid)] = resp
    return out


def _chunks(ids: list[int]) -> Any:
    for i in range(0, len(ids), 500):
        yield ids[i:i + 500]


def process_report(session: Session, actor: Actor, flt: ReportFilter, *,
                   key: str | None = None, definition_id: int | None = None,
                   now: dt.datetime | None = None) -> ProcessReport:
    now = now or dt.datetime.now(dt.UTC)
    lo, hi = flt.bounds()
    defs = {d.id: d for d in session.execute(select(
        ProcessDefinition.id, ProcessDefinition.key, ProcessDefinition.version,
        ProcessDefinition.name))}
    stmt = select(ProcessInstance.id, ProcessInstance.definition_id, ProcessInstance.status,
                  ProcessInstance.entity_type, ProcessInstance.entity_id,
                  ProcessInstance.started_at).where(ProcessInstance.started_at >= lo,
                                                    ProcessInstance.started_at < hi)
    if definition_id is not None:
        stmt = stmt.where(ProcessInstance.definition_id == definition_id)
    elif key:
        stmt = stmt.where(ProcessInstance.definition_id.in_(
            [d.id for d in defs.values() if d.key == key]))
    rows = _visible(session, actor, list(session.execute(stmt)))
    owners = _responsibles(session, rows)
    allowed_users = department_users(session, flt.department_id)
    manager_of = {r.id: owners.get((r.entity_type, r.entity_id)) for r in rows}
    if allowed_users is not None:
        rows = [r for r in rows if manager_of[r.id] in allowed_users]
    ids = sorted(r.id for r in rows)

    history: dict[int, list[ProcessHistory]] = defaultdict(list)
    tasks: list[ProcessTask] = []
    timers: dict[int, list[Timer]] = defaultdict(list)
    for chunk in _chunks(ids):
        for h in session.scalars(select(ProcessHistory).where(
                ProcessHistory.instance_id.in_(chunk)).order_by(ProcessHistory.at,
                                                                ProcessHistory.id)):
            history[h.instance_id].append(h)
        tasks.extend(session.scalars(select(ProcessTask).where(
            ProcessTask.instance_id.in_(chunk))))
        for t in session.scalars(select(Timer).where(Timer.instance_id.in_(chunk),
                                                     Timer.kind == TimerKind.BOUNDARY)):
            timers[t.instance_id].append(t)

    # first contact: the activities on the instances' records
    first_activity: dict[tuple[str, int], list[dt.datetime]] = defaultdict(list)
    by_entity: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        if r.entity_type in RECORD_ENTITIES and r.entity_id is not None:
            by_entity[r.entity_type].add(r.entity_id)
    for entity, rids in by_entity.items():
        for chunk in _chunks(sorted(rids)):
            for eid, at in session.execute(select(Activity.entity_id, Activity.created_at)
                                           .where(Activity.entity_type == entity,
                                                  Activity.entity_id.in_(chunk))):
                first_activity[(entity, eid)].append(at)

    users = {u for u in manager_of.values() if u is not None}
    users |= {t.completed_by or t.assignee_id for t in tasks
              if (t.completed_by or t.assignee_id) is not None}
    names = user_labels(session, users)
    dep_names = dict(session.execute(select(Department.id, Department.name)).all())

    by_version: dict[int, Figures] = {}
    by_manager: dict[int | None, Figures] = {}
    by_department: dict[int | None, Figures] = {}
    total = Figures("*", "")

    def buckets(user_id: int | None) -> list[Figures]:
        dep = names.get(user_id, ("", None))[1] if user_id is not None else None
        m = by_manager.setdefault(user_id, Figures(user_id, names.get(user_id, ("", None))[0]
                                                   if user_id is not None else ""))
        d = by_department.setdefault(dep, Figures(dep, dep_names.get(dep, "")
                                                  if dep is not None else ""))
        return [m, d]

    version_of = {r.id: r.definition_id for r in rows}
    for r in rows:
        d = defs.get(r.definition_id)
        v = by_version.setdefault(r.definition_id, Figures(
            r.definition_id, f"{d.name or d.key} v{d.version}" if d else f"#{r.definition_id}"))
        events = history.get(r.id, [])
        routed = next((h.at for h in events if h.event == "assigned"), r.started_at)
        contact = None
        if r.entity_type in RECORD_ENTITIES and r.entity_id is not None:
            later = [a for a in first_activity.get((r.entity_type, r.entity_id), ())
                     if a >= routed]
            contact = min(later) if later else None
        armed = timers.get(r.id, [])
        for f in [v, total, *buckets(manager_of[r.id])]:
            f.instances += 1
            f.completed += r.status == "completed"
            f.incidents += any(h.event == "incident" for h in events)
            if contact is not None:
                f.contacted += 1
                f.contact_seconds += (contact - routed).total_seconds()
            if armed:
                f.sla_armed += 1
                f.sla_breached += any(t.status == TimerStatus.FIRED for t in armed)
    for t in tasks:
        done = t.status == TaskStatus.COMPLETED
        late = t.due_at is not None and (
            (t.completed_at is not None and t.completed_at > t.due_at)
            or (t.status in TaskStatus.ACTIVE and t.due_at < now))
        who = t.completed_by or t.assignee_id
        for f in [by_version[version_of[t.instance_id]], total, *buckets(who)]:
            f.tasks_done += done
            f.tasks_overdue += bool(late)

    elements: list[ElementTime] = []
    if definition_id is not None:
        elements = element_times(history)

    def ordered(d: dict[Any, Figures]) -> list[Figures]:
        return sorted(d.values(), key=lambda f: (-f.instances, f.label))

    return ProcessReport(ordered(by_version), ordered(by_manager), ordered(by_department),
                         total, elements)


def element_times(history: dict[int, list[ProcessHistory]]) -> list[ElementTime]:
    """Average time per element (see the module docstring), slowest first."""
    spent: dict[str, list[float]] = defaultdict(list)
    for events in history.values():
        last: dt.datetime | None = None
        entered: dict[str, dt.datetime] = {}
        for h in events:
            if h.event == "waiting" and h.element_id:
                entered.setdefault(h.element_id, h.at)
            elif h.event == "left" and h.element_id:
                since = entered.pop(h.element_id, last or h.at)
                spent[h.element_id].append((h.at - since).total_seconds())
            last = h.at
    out = [ElementTime(e, len(v), round(sum(v) / len(v), 1)) for e, v in spent.items()]
    return sorted(out, key=lambda e: (-e.average_seconds, e.element_id))
