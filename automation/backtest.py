"""Backtest: what a draft would have done with the CRM events of the last N days.

``backtest(session, engine, bpmn_xml, dmn_xmls, days=30)`` runs the drawing on every recorded
outbox event of that period that would start it, and compares where each record would have gone
with where it went: "37 of 1,204 deals would go to Ольга Корпоративная instead of Иван
Менеджеров". Nothing is written, locked or called: the runs happen in memory on the compiled
spec, so a backtest of 10,000 events neither holds SQLite's write lock nor PostgreSQL row locks
while live routing goes on (``bench/backtest.py``).

Where a record goes ("destination"): the user a ``crm.assign_responsible`` service task makes
responsible; else the assignee of the first user task (or its candidates, a pool); else the
record stays with its responsible. An incident (a failing condition, an assignment that finds
nobody) is a destination of its own, named by the element. What actually happened is read the
same way from the instance of the same process key the event started (its audit trail and its
task rows); an event the deployed process did not start stayed with its responsible.

How faithful it is, and why:

* Start data are the outbox event's snapshot (``payload["fields"]``, the record as that write
  left it; events without one use the record as it is now). The related summaries (the
  responsible's name and department, the company, the contacts) are today's.
* Processes of higher priority run first on an event (the dispatcher's order); what they
  actually did to the responsible is applied to the snapshot the draft sees (so a lower-priority
  rule that leaves a responsible set by another rule alone behaves as it did).
* Gateways, scripts and DMN tables run as they will after deploy; assignments use the real
  ``CrmAssigner`` over today's org chart at the event's time (absences then), with round robin
  turning in memory from today's cursor; ``least_loaded`` counts today's open tasks.
* Service operations other than ``crm.assign_responsible`` are recorded, not simulated; they
  answer ``{}`` as in the dry run (``automation.dryrun``). Timers are not waited for: a run stops
  at its first wait, as routing does.
* A start the engine's pre-filter skips (``engine.prefilter``: the draft's first gateway has no
  condition that can hold on the event's data, so the run would take its default flow to a
  plain end) is not run: the record stays with its responsible, the outcome the full run gives.
  When the pre-filter is unsure (a failing condition, another shape), the drawing runs. With
  the engine's ``prefilter`` off every event is run (the report is the same).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.defaults import UserTask
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.db import utcnow
from crm_models.entities import ENTITY_MODELS, Company, Contact, deal_contact
from crm_models.org import User
from crm_models.permissions import Actor
from engine import extensions as ext
from engine.data import to_json
from engine.errors import EngineError, SandboxError, ServiceCallError, ValidationError
from engine.executor import start_on
from engine.parser import MarshrutServiceTask, marshrut_info
from engine.ports import AssignmentSpec
from engine.prefilter import StartFilter, derive
from engine.runtime import Engine
from engine.scripting import SandboxScriptEngine
from engine.services import literal
from engine.store import ProcessDefinition, ProcessInstance, ProcessTask

from .actors import parse_process_label
from .assignment import CrmAssigner, department_head, find_department, find_role, find_user
from .models import RoundRobinCursor
from .params import coerce_params
from .snapshot import (
    SnapshotError,
    company_summary,
    contact_summary,
    entity_snapshot,
    event_data,
    user_summary,
)

MAX_DAYS = 366
MAX_EVENTS = 50_000
EXAMPLES = 5
#: service tasks run one after another before a run is taken for a loop
_MAX_ROUNDS = 100
ASSIGN_OP = "crm.assign_responsible"


class BacktestError(Exception):
    """A parameter of the backtest itself (not the drawing) is wrong; ``field`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Destination:
    """Where a record went: ``kind`` "user" (``ids`` one user), "pool" (candidates) or
    "incident" (``element`` and ``message``)."""

    kind: str
    ids: tuple[int, ...] = ()
    element: str = ""
    message: str = field(default="", compare=False, hash=False)

    def to_json(self, names: Mapping[int, str]) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "incident":
            out.update(element_id=self.element, message=self.message)
        else:
            out["users"] = [{"id": i, "full_name": names.get(i, f"#{i}")} for i in self.ids]
        return out


@dataclass
class Group:
    entity_type: str
    actual: Destination
    draft: Destination
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BacktestReport:
    key: str = ""
    days: int = 0
    since: dt.datetime | None = None
    errors: list[ValidationError] = field(default_factory=list)
    #: events the draft starts on, per entity type
    events: Counter[str] = field(default_factory=Counter)
    changed: Counter[str] = field(default_factory=Counter)
    groups: list[Group] = field(default_factory=list)
    skipped: int = 0  # events whose record is gone and whose snapshot holds no fields
    names: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "days": self.days,
            "since": self.since.isoformat() if self.since else None,
            "errors": [{"element_id": e.element_id, "message": e.message} for e in self.errors],
            "events": sum(self.events.values()), "changed": sum(self.changed.values()),
            "by_entity": {e: {"events": n, "changed": self.changed.get(e, 0)}
                          for e, n in sorted(self.events.items())},
            "skipped": self.skipped, "seconds": round(self.seconds, 3),
            "groups": [{"entity_type": g.entity_type, "count": g.count,
                        "of": self.events[g.entity_type],
                        "actual": g.actual.to_json(self.names),
                        "draft": g.draft.to_json(self.names), "examples": g.examples}
                       for g in self.groups]}


# --- the recorded history ----------------------------------------------------------------------

@dataclass
class _Event:
    id: int
    type: str
    entity: str
    entity_id: int
    at: dt.datetime
    payload: Any
    actor_user_id: int | None
    actor_label: str

    # ``automation.snapshot.EventLike``
    @property
    def event_type(self) -> str:
        return self.type


@dataclass
class _Started:
    """An instance an event actually started."""

    id: int
    key: str
    priority: int
    incident: str | None
    incident_message: str | None
    assigned: int | None = None  # the responsible its service tasks set last
    task: tuple[int | None, tuple[int, ...]] | None = None  # its first task's (assignee, pool)


def _history(session: Session, triggers: Sequence[str], since: dt.datetime, limit: int
             ) -> tuple[list[_Event], dict[int, list[_Started]]]:
    """The events of the period the draft starts on, and per event what each process it
    started did (five statements for any number of events)."""
    o = OutboxEvent
    rows = session.execute(
        select(o.id, o.event_type, o.entity_type, o.entity_id, o.created_at, o.payload,
               o.actor_user_id, o.actor_label)
        .where(o.created_at >= since, o.event_type.in_(list(triggers)))
        .order_by(o.id).limit(limit + 1)).all()
    if len(rows) > limit:
        raise BacktestError("days", f"more than {limit:,} events in this period; "
                                    "choose fewer days")
    events = [_Event(*r) for r in rows if r[2] in ENTITY_MODELS]
    started: dict[int, list[_Started]] = defaultdict(list)
    if not events:
        return events, started
    first = events[0].id
    wanted = {e.id for e in events}
    i, d = ProcessInstance, ProcessDefinition
    by_id: dict[int, _Started] = {}
    for inst_id, event_id, key, priority, incident, message in session.execute(
            select(i.id, i.event_id, d.key, d.priority, i.incident_element_id,
                   i.incident_message)
            .join(d, d.id == i.definition_id).where(i.event_id >= first)
            .order_by(i.id)):
        if event_id in wanted:
            s = _Started(inst_id, key, priority, incident, message)
            started[event_id].append(s)
            by_id[inst_id] = s
    if not by_id:
        return events, started
    low = min(by_id)
    t = ProcessTask
    for inst_id, assignee, pool in session.execute(
            select(t.instance_id, t.assignee_id, t.candidate_ids)
            .where(t.instance_id >= low).order_by(t.id)):
        s = by_id.get(inst_id)
        if s is not None and s.task is None:
            s.task = (assignee, tuple(pool or ()))
    a = AuditEvent
    for label, changes in session.execute(
            select(a.actor_label, a.changes)
            .where(a.at >= since, a.actor_label.like("process %")).order_by(a.id)):
        who = parse_process_label(label)
        s = by_id.get(who.instance_id) if who is not None else None
        change = changes.get("responsible_id") if isinstance(changes, dict) else None
        if s is not None and isinstance(change, list) and len(change) == 2:
            s.assigned = change[1]
    return events, started


# --- the simulation ------------------------------------------------------------------------------

class _Assigner(CrmAssigner):
    """The CRM assigner reading only: round robin turns a cursor kept in memory."""

    def __init__(self, session: Session, open_tasks: Any) -> None:
        super().__init__(open_tasks)
        self._cursors = dict(session.execute(
            select(RoundRobinCursor.key, RoundRobinCursor.last_user_id)).all())

    def _next_in_turn(self, session: Session, target: str, pool: list[User]) -> User:
        key = f"role:{target.casefold()}"[:120]
        last = self._cursors.get(key)
        chosen = next((u for u in pool if last is None or u.id > last), pool[0])
        self._cursors[key] = chosen.id
        return chosen


class _Incident(Exception):
    def __init__(self, element: str, message: str) -> None:
        super().__init__(message)
        self.element = element
        self.message = message


def _cause(exc: BaseException, kind: type) -> Any:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return None


class _Runner:
    def __init__(self, session: Session, engine: Engine, compiled: Any) -> None:
        self.session = session
        self.engine = engine
        self.compiled = compiled
        self.script = SandboxScriptEngine(engine.sandbox)
        self.assigner = _Assigner(session, getattr(engine.assigner, "_open_tasks", None))
        self.users: dict[int, User] = {}
        self._filters: dict[str, StartFilter | None] = {}

    def start_filter(self, message: str | None) -> StartFilter | None:
        """The engine's start pre-filter of ``message`` in the draft (``engine.prefilter``),
        derived once per message; None when the engine runs without pre-filters or the
        drawing has none."""
        if message is None or not getattr(self.engine, "prefilter", False):
            return None
        if message not in self._filters:
            c = self.compiled
            self._filters[message] = derive(c.spec, dict(c.subprocess_specs), message)
        return self._filters[message]

    def user(self, user_id: Any) -> User | None:
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            return None
        if user_id not in self.users:
            self.users[user_id] = self.session.get(User, user_id)  # type: ignore[assignment]
        return self.users[user_id]

    def run(self, data: dict[str, Any], message: str | None, entity: str,
            now: dt.datetime) -> Destination:
        """Run the drawing to its first wait; where the record would go.

        A start the engine's pre-filter skips (no condition of the first gateway can hold:
        the run would take the default flow to a plain end) is not run: the record stays
        with its responsible, as the full run would leave it. Any doubt runs the drawing."""
        c = self.compiled
        start_filter = self.start_filter(message)
        if start_filter is not None and start_filter.skips(
                self.engine.sandbox, {**data, **c.variables}):  # the gateway's data
            record = data.get(entity) if isinstance(data.get(entity), dict) else {}
            return _stays(record)
        wf = BpmnWorkflow(c.spec, dict(c.subprocess_specs), script_engine=self.script)
        wf.task_tree.data.update(data)
        wf.task_tree.data.update(c.variables)
        assigned: int | None = None
        try:
            try:
                start_on(wf, message)
            except Exception as exc:  # noqa: BLE001 - e.g. no start event for this message
                raise _Incident("", str(exc) or type(exc).__name__) from None
            for _ in range(_MAX_ROUNDS):
                try:
                    wf.refresh_timers()
                    wf.do_engine_steps()
                except Exception as exc:  # noqa: BLE001 - the drawing's fault, named below
                    raise self._incident(wf, exc) from None
                ready = wf.get_tasks(state=TaskState.READY, manual=True)
                services = [t for t in ready if isinstance(t.task_spec, MarshrutServiceTask)]
                for task in services:
                    who = self._service(task, entity, now)
                    assigned = who if who is not None else assigned
                if not services:
                    break
            else:
                raise _Incident("", f"more than {_MAX_ROUNDS} service calls in a row")
            first = None
            for task in ready:  # what waits now: the run stops here, as routing does
                if isinstance(task.task_spec, UserTask):
                    got = self._assign(task, now)
                    first = first or got
        except _Incident as exc:
            return Destination("incident", element=exc.element, message=exc.message)
        if assigned is not None:
            return Destination("user", (assigned,))
        if first is not None:
            return first
        record = data.get(entity) if isinstance(data.get(entity), dict) else {}
        return _stays(record)

    def _incident(self, wf: BpmnWorkflow, exc: Exception) -> _Incident:
        sandbox = _cause(exc, SandboxError)
        failed = wf.get_tasks(state=TaskState.ERROR)
        element = (sandbox.element_id if sandbox else None) or (
            getattr(failed[-1].task_spec, "bpmn_id", None) if failed else None) or ""
        message = sandbox.message if sandbox else (str(exc) or type(exc).__name__)
        return _Incident(element, message)

    def _params(self, op: Any, config: ext.ServiceTaskConfig, task: Any) -> dict[str, Any]:
        specs = {p.name: p for p in op.spec.params}
        params: dict[str, Any] = {}
        for p in config.params:
            if p.expression is not None:
                value = self.engine.sandbox.evaluate(p.expression, task.data)
                params[p.name] = to_json(value, where=f"parameter {p.name}")
            elif p.name in specs:
                params[p.name] = literal(specs[p.name], p.value or "")
            else:
                params[p.name] = p.value
        return params

    def _service(self, task: Any, entity: str, now: dt.datetime) -> int | None:
        """Run one service task as a recording; ``crm.assign_responsible`` is resolved (who it
        would choose) and its effect put into the data, as the real operation's snapshot
        would. Returns the user made responsible, if any."""
        config = ext.ServiceTaskConfig.from_dict(marshrut_info(task.task_spec))
        element = task.task_spec.bpmn_id
        op = self.engine.registry.get(config.operation)
        if op is None:
            raise _Incident(element, f"operation '{config.operation}' is not registered")
        result: dict[str, Any] = {}
        chosen: int | None = None
        try:
            params = self._params(op, config, task)
            if config.operation == ASSIGN_OP:
                user = self._assign_target(coerce_params(op.spec, params), now)
                chosen = user.id
                result = {"assigned": {"user_id": user.id, "email": user.email,
                                       "full_name": user.full_name}}
                record = task.data.get(entity)
                if isinstance(record, dict):
                    result[entity] = {**record, "responsible_id": user.id,
                                      "responsible": user_summary(user),
                                      "responsible_set_by": self.compiled.key}
        except (ServiceCallError, SandboxError, EngineError) as exc:
            raise _Incident(element, f"{config.operation}: {exc.message}") from None
        task.data.update(result)
        task.run()
        return chosen

    def _assign_target(self, p: Mapping[str, Any], now: dt.datetime) -> User:
        """Who ``crm.assign_responsible`` would make responsible (its own rules, read only)."""
        given = [k for k in ("user", "role", "department_head") if k in p]
        if len(given) != 1:
            raise ServiceCallError("give exactly one of user, role, department_head",
                                   retryable=False)
        if "user" in p:
            user = find_user(self.session, p["user"])
            if user is None or not user.active:
                raise ServiceCallError(f"user: no active user {p['user']!r}", retryable=False)
            return user
        if "role" in p:
            if find_role(self.session, p["role"]) is None:
                raise ServiceCallError(f"role: no role {p['role']!r}", retryable=False)
            got = self.assigner.resolve(self.session, AssignmentSpec(
                "round_robin", p["role"], "skip"), {}, now)
            user = self.user(got.assignee_id)
            assert user is not None
            return user
        dep = find_department(self.session, p["department_head"])
        if dep is None:
            raise ServiceCallError(f"department_head: no department {p['department_head']!r}",
                                   retryable=False)
        head = department_head(self.session, dep)
        if head is None or not head.active:
            raise ServiceCallError(f"department_head: {dep.name!r} has no head",
                                   retryable=False)
        return head

    def _assign(self, task: Any, now: dt.datetime) -> Destination:
        spec = task.task_spec
        element = spec.bpmn_id
        config = ext.UserTaskConfig.from_dict(marshrut_info(spec))
        try:
            a = self.assigner.resolve(self.session, config.assignment, task.data, now)
        except Exception as exc:  # noqa: BLE001 - becomes an incident, as in the engine
            raise _Incident(element, f"cannot assign task {element}: "
                                     f"{getattr(exc, 'message', exc)}") from None
        if a.assignee_id is not None:
            return Destination("user", (a.assignee_id,))
        if not a.candidate_ids:
            raise _Incident(element, f"nobody to assign task {element} to")
        return Destination("pool", tuple(sorted(a.candidate_ids)))


def _stays(record: Mapping[str, Any]) -> Destination:
    """Nothing routed the record: it stays with its responsible."""
    rid = record.get("responsible_id")
    return Destination("user", (rid,) if isinstance(rid, int) else ())


def _actual(started: _Started | None, record: Mapping[str, Any]) -> Destination:
    if started is None:
        return _stays(record)
    if started.assigned is not None:
        return Destination("user", (started.assigned,))
    if started.task is not None:
        assignee, pool = started.task
        if assignee is not None:
            return Destination("user", (assignee,))
        return Destination("pool", tuple(sorted(pool)))
    if started.incident:
        return Destination("incident", element=started.incident,
                           message=started.incident_message or "")
    return _stays(record)


# --- the backtest ------------------------------------------------------------------------------

class _Related:
    """Today's companies and contacts of the events' records, read for all of them at once
    (three statements, not one snapshot per event)."""

    def __init__(self, session: Session, events: Sequence[_Event]) -> None:
        def fields(ev: _Event) -> Mapping[str, Any]:
            p = ev.payload if isinstance(ev.payload, dict) else {}
            f = p.get("fields")
            return f if isinstance(f, dict) else {}

        def ids(values: Iterable[Any]) -> list[int]:
            return sorted({v for v in values if isinstance(v, int) and not isinstance(v, bool)})

        company_ids = ids(fields(ev).get("company_id") for ev in events)
        contact_ids = ids(fields(ev).get("contact_id") for ev in events if ev.entity == "lead")
        deal_ids = ids(ev.entity_id for ev in events if ev.entity == "deal")
        self.companies: dict[int, Any] = {}
        self.contacts: dict[int, Any] = {}
        self.deal_contacts: dict[int, list[Any]] = defaultdict(list)
        for chunk in _chunks(company_ids):
            for c in session.scalars(select(Company).where(Company.id.in_(chunk))):
                self.companies[c.id] = company_summary(c)
        for chunk in _chunks(contact_ids):
            for c in session.scalars(select(Contact).where(Contact.id.in_(chunk))):
                self.contacts[c.id] = contact_summary(c)
        for chunk in _chunks(deal_ids):
            for deal_id, c in session.execute(
                    select(deal_contact.c.deal_id, Contact)
                    .join(Contact, Contact.id == deal_contact.c.contact_id)
                    .where(deal_contact.c.deal_id.in_(chunk)).order_by(Contact.id)):
                self.deal_contacts[deal_id].append(contact_summary(c))


def _chunks(values: list[int], size: int = 500) -> Iterable[list[int]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _start_data(runner: _Runner, ev: _Event, related: _Related) -> dict[str, Any] | None:
    payload = ev.payload if isinstance(ev.payload, dict) else {}
    fields = payload.get("fields")
    if isinstance(fields, dict):
        record = dict(fields)
        if ev.entity in ("deal", "lead", "contact"):
            record["company"] = related.companies.get(record.get("company_id"))
        if ev.entity == "deal":
            record["contacts"] = list(related.deal_contacts.get(ev.entity_id, ()))
        elif ev.entity == "lead":
            record["contact"] = related.contacts.get(record.get("contact_id"))
    else:
        try:
            record = entity_snapshot(runner.session, ev.entity, ev.entity_id)
        except SnapshotError:
            return None
    record["responsible"] = user_summary(runner.user(record.get("responsible_id")))
    record["responsible_set_by"] = None
    return {ev.entity: record, "event": event_data(ev, ev.entity, ev.entity_id)}


def _after_earlier_rules(runner: _Runner, data: dict[str, Any], entity: str,
                         earlier: Iterable[_Started]) -> None:
    """What the processes that ran before the draft on this event did to the responsible."""
    record = data[entity]
    for s in earlier:
        if s.assigned is not None:
            record["responsible_id"] = s.assigned
            record["responsible"] = user_summary(runner.user(s.assigned))
            record["responsible_set_by"] = s.key


def backtest(session: Session, engine: Engine, bpmn_xml: str | bytes,
             dmn_xmls: Sequence[str | bytes] = (), *, days: Any = 30,
             now: dt.datetime | None = None, limit: int = MAX_EVENTS,
             examples: int = EXAMPLES, actor: Actor | None = None) -> BacktestReport:
    """Run the drawing on the events of the last ``days`` days (see the module docstring).

    An invalid drawing comes back with ``errors`` naming each element (nothing is run); a bad
    ``days`` raises ``BacktestError``. Reads only; the caller's transaction is left as it was
    (nothing added to the session). With ``actor``, an example's title is given only when
    the actor may read that record (the counts cover every record)."""
    import time

    t0 = time.perf_counter()
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise BacktestError("days", f"must be a whole number of days from 1 to {MAX_DAYS}")
    report = BacktestReport(days=days)
    compiled, errors = engine.compiler.compile(bpmn_xml, tuple(dmn_xmls), session)
    if compiled is None:
        report.errors = errors
        return report
    report.key = compiled.key
    report.since = (now or utcnow()) - dt.timedelta(days=days)
    events, started = _history(session, compiled.triggers, report.since, limit)
    runner = _Runner(session, engine, compiled)
    rank = (compiled.priority, compiled.key)
    groups: dict[tuple[str, Destination, Destination], Group] = {}
    related = _Related(session, events)
    for ev in events:
        cause = parse_process_label(ev.actor_label)
        if cause is not None and cause.key == compiled.key:
            continue  # the process's own write never starts it (the dispatcher's rule)
        data = _start_data(runner, ev, related)
        if data is None:
            report.skipped += 1
            continue
        mine = next((s for s in started.get(ev.id, ()) if s.key == compiled.key), None)
        earlier = [s for s in started.get(ev.id, ()) if (s.priority, s.key) < rank]
        _after_earlier_rules(runner, data, ev.entity, earlier)
        before = dict(data[ev.entity])
        report.events[ev.entity] += 1
        draft = runner.run(data, ev.type, ev.entity, ev.at)
        actual = _actual(mine, before)
        if draft == actual:
            continue
        report.changed[ev.entity] += 1
        g = groups.get((ev.entity, actual, draft))
        if g is None:
            g = groups[(ev.entity, actual, draft)] = Group(ev.entity, actual, draft)
        g.count += 1
        if len(g.examples) < examples:
            readable = actor is None or actor.allows_record(
                ev.entity, "read", before.get("responsible_id"), bool(before.get("opened")))
            title = str(before.get("title") or before.get("full_name") or "")[:200]
            g.examples.append({"entity_type": ev.entity, "entity_id": ev.entity_id,
                               "event_id": ev.id, "event_type": ev.type,
                               "title": title if readable else ""})
    report.groups = sorted(groups.values(), key=lambda g: (-g.count, g.entity_type))
    ids = {i for g in report.groups for d in (g.actual, g.draft) for i in d.ids}
    for uid in sorted(ids):
        u = runner.user(uid)
        report.names[uid] = u.full_name if u is not None else f"#{uid}"
    report.seconds = time.perf_counter() - t0
    return report
