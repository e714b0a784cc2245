"""Advancing one instance inside the caller's transaction: steps, service calls, user tasks.

An :class:`InstanceRun` holds a loaded workflow and its instance row. ``advance()`` runs the
engine until the workflow waits (user tasks, messages, a service retry) or fails; ``save()``
writes the state once — never per task, which would make a run O(n²). Failures never escape as
exceptions: they become the instance's incident (element + message), so other instances and
the caller's transaction carry on.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any, TypeVar

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.defaults import ManualTask, ScriptTask, UserTask
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from . import extensions as ext
from . import progress, timer_events, timer_scopes, timers
from .bpmn_errors import DEFAULT_CODE, throw_error
from .correlation import trigger_events
from .data import copy_data, data_size, diff, to_json
from .errors import DataLimitExceeded, EngineError, SandboxError, ServiceCallError
from .event_scopes import trigger_events_nested
from .parser import MarshrutBusinessRuleTask, MarshrutServiceTask, marshrut_info
from .persistence import write_instance
from .ports import ProcessContext
from .services import literal
from .store import (
    ProcessDefinition,
    ProcessHistory,
    ProcessInstance,
    ProcessTask,
    ProcessTaskCandidate,
    Status,
    TaskStatus,
)
from .tasks import TASKS_INSERTED, withdraw_candidates

if TYPE_CHECKING:
    from .runtime import Engine

E = TypeVar("E", bound=BaseException)

log = logging.getLogger(__name__)
SERVICE_STATE = "marshrut_service"  # key in a service task's internal_data
#: the state of a completed instance: ``{FINAL_DATA: data}``
FINAL_DATA = "final_data"
DEFAULT_DATA_LIMIT = 1024 * 1024  # bytes of an instance's data (``Engine(data_limit=…)``)
_HISTORY_INSERT = ProcessHistory.__table__.insert()
_TASK = ProcessTask.__table__
#: one statement for all the task rows of a unit of work, their ids in the rows' order
_TASK_INSERT = _TASK.insert().returning(_TASK.c.id, sort_by_parameter_order=True)
_CANDIDATE_INSERT = ProcessTaskCandidate.__table__.insert()


class InstanceRun:
    """One unit of work on one instance (see module docstring)."""

    def __init__(self, engine: Engine, session: Session, instance: ProcessInstance,
                 definition: ProcessDefinition, workflow: BpmnWorkflow, *,
                 fresh: bool = False) -> None:
        self.engine = engine
        self.session = session
        self.instance = instance
        self.definition = definition
        self.wf = workflow
        self.now = engine.clock.now()
        #: the instance row is new (``Engine.start``), so it has no task rows yet
        self.fresh = fresh
        self._before: dict[Any, dict[str, Any]] = {}
        self._history: list[dict[str, Any]] = []
        #: task rows made in this unit of work, written by ``save`` (``write_tasks``)
        self._new_tasks: list[dict[str, Any]] = []
        #: (task id, element id) of the timers fired in this unit of work
        self.fired_timers: set[tuple[str, str]] = set()
        #: the element completed last (named when the stored state outgrows the limit)
        self.last_element: str | None = None

    # ------------------------------------------------------------- history
    def record(self, event: str, element_id: str | None = None, message: str = "",
               user_id: int | None = None, changes: dict[str, Any] | None = None) -> None:
        """Buffered: ``save()`` writes the unit of work's history in one statement."""
        self._history.append({
            "instance_id": self.instance.id, "at": self.now, "event": event,
            "element_id": element_id, "user_id": user_id, "message": message[:4000],
            "changes": changes or None})

    def carry_history(self, rows: Any) -> None:
        """Write these rows (of other instances; a caller deferred them) with this unit of
        work's own history, in the same statement and ahead of them."""
        self._history[:0] = list(rows)

    def flush_history(self) -> None:
        if self._history:
            rows, self._history = self._history, []
            # On the session's connection: an insert needs no autoflush of pending objects.
            self.session.connection().execute(_HISTORY_INSERT, rows)

    # -------------------------------------------------------------- start
    def start_on(self, message: str | None, timer: str | None = None,
                 signal: str | None = None) -> None:
        start_on(self.wf, message, timer, signal)

    def deliver(self, message: str, payload: dict[str, Any]) -> None:
        """Hand a message to the catch events waiting for it (raises if none waits)."""
        waiting = {e["event"] for e in self.waiting_events()}
        if message not in waiting:
            raise EngineError(f"instance {self.instance.id} is not waiting for '{message}'")
        self.wf.catch(BpmnEvent(MessageEventDefinition(message), payload))
        self.record("message", None, f"received '{message}'")

    # ------------------------------------------------------------ advance
    def advance(self) -> None:
        """Run until the workflow waits or fails, then bring the task rows up to date.

        Timers that start waiting get their due time here; one that is already due (a past
        timeDate, ``PT0S``) fires at once instead of waiting for the scheduler."""
        while True:
            try:
                self.wf.refresh_timers()  # timers marked fired become ready to run
                self.wf.do_engine_steps(will_complete_task=self._will_complete,
                                        did_complete_task=self._did_complete)
            except Exception as exc:
                self._incident_from(exc)
                break
            if self._run_service_tasks():
                continue
            try:
                fired = timer_events.arm(self.wf, self.now, self._timer_due)
                fired += timer_scopes.arm(self.wf, self.now, self._timer_due)
            except timer_events.TimerArmError as exc:
                self.set_incident(exc.element_id, str(exc), attempts=1, retry_at=None)
                break
            for task_id, element in fired:
                self.fired_timers.add((task_id, element))
                self.record("timer_fired", element, "timer fired (already due)")
            if not fired:
                break
        self._sync_user_tasks()

    def _timer_due(self, spec: Any) -> dt.datetime:
        return timers.due_of(spec, self.now, self.engine.calendar)

    def _will_complete(self, task: Any) -> None:
        if isinstance(task.task_spec, ScriptTask | MarshrutBusinessRuleTask):
            self._before[task.id] = copy_data(task.data)

    def _did_complete(self, task: Any) -> None:
        spec = task.task_spec
        element = getattr(spec, "bpmn_id", None)
        if not element:
            return  # library-internal task (Start, joins, End)
        before = self._before.pop(task.id, None)
        changes = diff(before, task.data) if before is not None else None
        message = ""
        flows = marshrut_info(spec).get("flows")
        if flows:
            taken = [c.task_spec.bpmn_id for c in task.children
                     if not c.has_state(TaskState.PREDICTED_MASK | TaskState.CANCELLED)]
            message = "; ".join(f"took flow {flows.get(t, '?')} to {t}" for t in taken)
        elif task.parent is not None and task.parent.task_spec.name != spec.name:
            message = progress.note(task)  # "instance 2 of 3" of a multi-instance …
        self.record("left", element, message, changes=changes)
        self.last_element = element
        self._check_data_size(task.data, element)

    def _check_data_size(self, data: Any, element: str) -> None:
        """Stop the run (an incident) as soon as one step leaves more data than the limit:
        a loop that keeps appending would otherwise run on and store it all."""
        limit = self.engine.data_limit
        if limit is not None:
            size = data_size(data)
            if size > limit:
                raise DataLimitExceeded(element, size, limit)

    # ------------------------------------------------------------ incidents
    def _incident_from(self, exc: Exception) -> None:
        too_big = _find(exc, DataLimitExceeded)
        if too_big is not None:
            self.set_incident(too_big.element_id, too_big.message, attempts=1, retry_at=None)
            return
        sandbox = _find(exc, SandboxError)
        failed = self.wf.get_tasks(state=TaskState.ERROR)
        task_element = getattr(failed[-1].task_spec, "bpmn_id", None) if failed else None
        element = (sandbox.element_id if sandbox else None) or task_element or ""
        if sandbox is not None:
            message = sandbox.message
        else:
            message = str(exc) or type(exc).__name__
            log.warning("instance %s failed at %s", self.instance.id, element, exc_info=exc)
        self.set_incident(element, message, attempts=1, retry_at=None)

    def set_incident(self, element: str, message: str, *, attempts: int,
                     retry_at: dt.datetime | None) -> None:
        inst = self.instance
        inst.incident_element_id = element[:200]
        inst.incident_message = message
        inst.incident_attempts = attempts
        inst.incident_retry_at = retry_at
        event = "retry_scheduled" if retry_at is not None else "incident"
        self.record(event, element, message)

    def clear_incident(self) -> None:
        inst = self.instance
        inst.incident_element_id = inst.incident_message = inst.incident_retry_at = None
        inst.incident_attempts = 0

    # ------------------------------------------------------------ services
    def _run_service_tasks(self) -> bool:
        """Call every due service task once; True if at least one succeeded."""
        ran = False
        for task in self.wf.get_tasks(state=TaskState.READY, manual=True):
            if not isinstance(task.task_spec, MarshrutServiceTask):
                continue
            state = task.internal_data.get(SERVICE_STATE, {})
            if state.get("failed"):
                continue
            retry_at = state.get("retry_at")
            if retry_at and dt.datetime.fromisoformat(retry_at) > self.now:
                continue
            ran = self._call_service(task, state) or ran
        return ran

    def _call_service(self, task: Any, state: dict[str, Any]) -> bool:
        config = ext.ServiceTaskConfig.from_dict(marshrut_info(task.task_spec))
        element = task.task_spec.bpmn_id
        attempts = int(state.get("attempts", 0)) + 1
        self.session.flush()  # our own rows first: a lost race must not count as the op's fault
        code = None
        try:
            op = self.engine.registry.get(config.operation)
            if op is None:
                raise ServiceCallError(f"operation '{config.operation}' is not registered",
                                       retryable=False)
            params = self._params(op, config, task)
            ctx = ProcessContext(self.definition.key, self.definition.version, self.instance.id,
                                 element, self.instance.entity_type, self.instance.entity_id)
            with self.session.begin_nested():  # a failure rolls back only this call
                result = op(self.session, ctx, params, copy_data(task.data))
                result = to_json(result if result is not None else {}, where="result")
                if not isinstance(result, dict):
                    raise ServiceCallError("the operation returned no dict", retryable=False)
        except OperationalError:
            raise  # a lock lost to another transaction: the caller gets Conflict
        except ServiceCallError as exc:
            message, retryable, code = exc.message, exc.retryable, exc.error_code
        except SandboxError as exc:
            message, retryable = f"parameter: {exc.message}", False
        except EngineError as exc:
            message, retryable = exc.message, False
        except Exception as exc:  # an operation's bug or a lost connection: try again later
            log.warning("service %s failed in instance %s", config.operation, self.instance.id,
                        exc_info=exc)
            message, retryable = f"{type(exc).__name__}: {exc}", True
        else:
            before = copy_data(task.data)
            task.data.update(result)
            task.internal_data.pop(SERVICE_STATE, None)
            task.run()
            if self.instance.incident_element_id == element:
                self.clear_incident()
            loop = progress.note(task)
            self.record("left", element, f"called {config.operation}"
                        + (f"; {loop}" if loop else ""), changes=diff(before, task.data))
            return True
        delays = self.engine.retry_delays
        if retryable and attempts <= len(delays):
            retry_at = self.now + dt.timedelta(seconds=delays[attempts - 1])
            task.internal_data[SERVICE_STATE] = {"attempts": attempts,
                                                 "retry_at": retry_at.isoformat()}
            self.set_incident(element, f"{config.operation} failed (attempt {attempts}): "
                                       f"{message}", attempts=attempts, retry_at=retry_at)
        else:
            caught = throw_error(task, code, message, config.operation)
            if caught is not None:  # the diagram handles it: no incident
                task.internal_data.pop(SERVICE_STATE, None)
                if self.instance.incident_element_id == element:
                    self.clear_incident()
                self.record("error_caught", caught, f"{config.operation} failed "
                            f"({code or DEFAULT_CODE}): {message}; caught by {caught}")
                return True
            task.internal_data[SERVICE_STATE] = {"attempts": attempts, "failed": True}
            self.set_incident(element, f"{config.operation} failed after {attempts} "
                                       f"attempt{'s' if attempts > 1 else ''}: {message}",
                              attempts=attempts, retry_at=None)
        return False

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

    def reset_failures(self) -> None:
        """For ``retry``: failed tasks run again and service tasks get fresh attempts."""
        for task in self.wf.get_tasks(state=TaskState.ERROR):
            task._set_state(TaskState.READY)  # the library has no public "retry" transition
        for task in self.wf.get_tasks(state=TaskState.READY, manual=True):
            task.internal_data.pop(SERVICE_STATE, None)
        self.clear_incident()

    # ---------------------------------------------------------- user tasks
    def _sync_user_tasks(self) -> None:
        if not has_human_tasks(self.wf):
            return  # no user task in the process: no task rows to look up (timers, services)
        ready = {str(t.id): t for t in self.wf.get_tasks(state=TaskState.READY, manual=True)
                 if isinstance(t.task_spec, HUMAN_TASKS)}
        rows = [] if self.fresh else self.session.scalars(select(ProcessTask).where(
            ProcessTask.instance_id == self.instance.id,
            ProcessTask.status.in_(TaskStatus.ACTIVE))).all()
        withdraw_candidates(self.session, [r for r in rows if r.spiff_task_id not in ready])
        for row in rows:
            if row.spiff_task_id not in ready:
                row.status = TaskStatus.CANCELLED
                row.completed_at = self.now
                self.record("task_cancelled", row.element_id, f"task '{row.name}' withdrawn")
        # rows made by an earlier ``advance`` of this unit of work, not written yet
        for new in self._new_tasks:
            if new["status"] == TaskStatus.OPEN and new["spiff_task_id"] not in ready:
                new["status"], new["completed_at"] = TaskStatus.CANCELLED, self.now
                self.record("task_cancelled", new["element_id"],
                            f"task '{new['name']}' withdrawn")
        active = {r.spiff_task_id for r in rows} | {n["spiff_task_id"] for n in self._new_tasks}
        for spiff_id, task in ready.items():
            if spiff_id not in active:
                self._create_task_row(task)
        self.fresh = False  # the rows just made are found by the next look-up

    def _create_task_row(self, task: Any) -> None:
        spec = task.task_spec
        config = ext.UserTaskConfig.from_dict(marshrut_info(spec))
        element = spec.bpmn_id
        # Rows first: an assignment that counts open tasks (least_loaded) counts this unit
        # of work's earlier ones too.
        self.write_tasks()
        self.session.flush()
        try:
            with self.session.begin_nested():
                assignment = self.engine.assigner.resolve(
                    self.session, config.assignment, copy_data(task.data), self.now)
        except OperationalError:
            raise
        except Exception as exc:
            self.set_incident(element, f"cannot assign task {element}: {exc}", attempts=1,
                              retry_at=None)
            return
        if assignment.assignee_id is None and not assignment.candidate_ids:
            self.set_incident(element, f"nobody to assign task {element} to "
                                       f"({config.assignment.kind} {config.assignment.target})"
                                       .replace(" )", ")"), attempts=1, retry_at=None)
            return
        due = (self.now + ext.parse_duration(config.due)) if config.due else None
        name = (spec.bpmn_name or element)[:300]
        self._new_tasks.append({
            "instance_id": self.instance.id, "spiff_task_id": str(task.id),
            "element_id": element, "name": name,
            "instructions": self._render(config.instructions, task.data),
            "form": [to_json(f.__dict__ | {"options": [o.__dict__ for o in f.options]})
                     for f in config.form],
            "assignee_id": assignment.assignee_id,
            "candidate_ids": list(assignment.candidate_ids),
            "claimed_by": None, "assignment_note": assignment.note[:500],
            "status": TaskStatus.OPEN, "priority": ext.TASK_PRIORITIES.get(config.priority, 2),
            "due_at": due, "created_at": self.now, "completed_at": None, "completed_by": None,
            "entity_type": self.instance.entity_type,  # no ``result``: SQL NULL, not JSON null
            "entity_id": self.instance.entity_id, "definition_key": self.definition.key})
        if self.instance.incident_element_id == element:
            self.clear_incident()
        who = (f"user {assignment.assignee_id}" if assignment.assignee_id is not None
               else "users " + ", ".join(str(c) for c in assignment.candidate_ids))
        note = f" ({assignment.note})" if assignment.note else ""
        self.record("assigned", element, f"'{name}' assigned to {who}{note} by "
                                         f"{config.assignment.kind} rule")

    def write_tasks(self) -> None:
        """INSERT the task rows made so far (one statement), their candidates (one more),
        and tell the session's ``TASKS_INSERTED`` listeners (the CRM's notifier)."""
        if not self._new_tasks:
            return
        rows, self._new_tasks = self._new_tasks, []
        conn = self.session.connection()
        ids = conn.execute(_TASK_INSERT, rows).scalars().all()
        candidates = []
        for row, id_ in zip(rows, ids, strict=True):
            row["id"] = id_
            if row["status"] == TaskStatus.OPEN:  # (one withdrawn before it was written)
                candidates += [{"user_id": u, "task_id": id_}
                               for u in sorted(set(row["candidate_ids"]))]
        if candidates:
            conn.execute(_CANDIDATE_INSERT, candidates)
        for listener in self.session.info.get(TASKS_INSERTED, ()):
            listener(self.session, rows)

    def _render(self, text: str, data: dict[str, Any]) -> str:
        def value(m: Any) -> str:
            try:
                v = self.engine.sandbox.evaluate(m.group(1).strip(), data)
            except SandboxError:
                return m.group(0)  # leave the placeholder visible rather than guess
            return "" if v is None else str(to_json(v))
        return ext.PLACEHOLDER.sub(value, text)

    # ---------------------------------------------------------------- save
    def waiting_events(self) -> list[dict[str, Any]]:
        return waiting_events(self.wf)

    def frontier_data(self) -> dict[str, Any]:
        return frontier_data(self.wf)

    def save(self) -> None:
        """The unit of work's one write phase: the instance row (one Core UPDATE, checked
        against its ``version``), its history, new task rows and timers, each in one
        statement — no ORM flush of the engine's own rows."""
        inst = self.instance
        # messages no catch event of this instance took: out of the state before it is
        # written (the library would keep them in it), passed on once it is
        outbound = self.wf.get_events()
        state = self._state()
        # Encoded once, as the column's JSON type would: its length bounds the compact size
        # the limit is about from above (only a longer text needs the exact measure), and
        # the text itself is what is written.
        encoded = json.dumps(state)
        limit = self.engine.data_limit
        if limit is not None and inst.status != Status.CANCELLED and not self.wf.completed \
                and not (inst.incident_element_id and inst.incident_retry_at is None) \
                and len(encoded) > limit:
            size = data_size(state)
            if size > limit:  # many small steps (a loop) can outgrow it too
                exc = DataLimitExceeded(self.last_element or "", size, limit)
                self.set_incident(exc.element_id, exc.message, attempts=1, retry_at=None)
        previous = inst.waiting or []
        had_timers = any(e.get("type") == timer_events.TIMER_EVENT_TYPE for e in previous)
        before = {(e.get("element"), e["event"]) for e in previous}
        waiting = self.waiting_events()
        self.engine.timer_service.sync_instance(self.session, self, had_timers=had_timers)
        for e in waiting:
            if (e["element"], e["event"]) not in before:
                self.record("waiting", e["element"], f"waiting for '{e['event']}'")
        status, ended_at = inst.status, inst.ended_at
        if status == Status.CANCELLED:
            pass
        elif self.wf.completed:
            status, ended_at = Status.COMPLETED, self.now
            self.clear_incident()
            self.record("finished", None, "process completed")
        elif inst.incident_element_id and inst.incident_retry_at is None:
            status = Status.INCIDENT
        else:
            status = Status.WAITING
        write_instance(self.session, inst, {
            "state": state, "serializer_version": self.engine.serializer.version,
            "waiting": waiting, "status": status, "ended_at": ended_at,
            "incident_element_id": inst.incident_element_id,
            "incident_message": inst.incident_message,
            "incident_attempts": inst.incident_attempts,
            "incident_retry_at": inst.incident_retry_at}, encoded={"state": encoded})
        self.flush_history()
        self.write_tasks()
        if outbound:
            self.engine.correlator.send_thrown(self, outbound)

    def _state(self) -> dict[str, Any]:
        """The workflow state to store; of a finished process only its final data (nothing
        will run it again: it is read for the viewer, ``Engine.instance_data``)."""
        if self.wf.completed and self.instance.status != Status.CANCELLED:
            try:
                return {FINAL_DATA: to_json(dict(self.wf.data), where="final data")}
            except EngineError:
                pass  # keep the library's own form of what JSON cannot hold
        return self.engine.serializer.state_to_dict(self.wf)


#: task specs that become rows in the inbox (a manual task: a to-do without a form)
HUMAN_TASKS = (UserTask, ManualTask)


def has_human_tasks(wf: BpmnWorkflow) -> bool:
    """Whether the process or one of its sub-processes has user or manual tasks."""
    specs = [wf.spec, *wf.subprocess_specs.values()]
    return any(isinstance(s, HUMAN_TASKS) for spec in specs for s in spec.task_specs.values())


def start_on(wf: BpmnWorkflow, message: str | None, timer: str | None = None,
             signal: str | None = None) -> None:
    """Run a new workflow up to its start events and keep only the one that fits: the message
    start event of ``message``, the timer start event ``timer`` (an element id; its schedule
    fired), the signal start event of ``signal``, or else the none start event — the others
    are cancelled so they neither run nor keep the instance waiting."""
    while True:
        ready = [t for t in wf.get_tasks(state=TaskState.READY)
                 if not isinstance(t.task_spec, StartEvent)]
        if not ready:
            break
        for task in ready:
            task.run()
    chosen = None
    for task in wf.get_tasks(state=TaskState.READY | TaskState.WAITING):
        if isinstance(task.task_spec, StartEvent):
            definition = task.task_spec.event_definition
            if isinstance(definition, MessageEventDefinition):
                fits = timer is None and definition.name == message
            elif isinstance(definition, SignalEventDefinition):
                fits = message is None and timer is None and definition.name == signal
            elif timer_events.timers_of(definition):
                fits = timer is not None and task.task_spec.bpmn_id == timer
            else:
                fits = message is None and timer is None and signal is None
            if not fits:
                task.cancel()
            elif timer is not None:
                chosen = task
    if chosen is not None:
        timer_events.fire_start(chosen)
    if message is not None:
        wf.catch(BpmnEvent(MessageEventDefinition(message), {}))
    elif signal is not None:  # not let out of the instance if nothing caught it
        wf.event_manager.catch(BpmnEvent(SignalEventDefinition(signal), {}), internal=False)


#: caught only from inside the instance: not listed as what it waits for
INTERNAL_EVENTS = ("ErrorEventDefinition", "EscalationEventDefinition")


def waiting_events(wf: BpmnWorkflow) -> list[dict[str, Any]]:
    """What the workflow waits for, one entry per event (an event-based gateway's
    alternatives listed separately): ``{"event", "type", "element", "value"}``."""
    out = []
    for task in wf.event_manager.tasks.values():
        definition = task.task_spec.event_definition
        parts = (definition.event_definitions
                 if isinstance(definition, MultipleEventDefinition) else [definition])
        for part in parts:
            detail = part.details(task)
            if detail.event_type in INTERNAL_EVENTS:
                continue  # error/escalation catches: thrown inside the instance only
            if isinstance(part, timer_events.MarshrutTimerEvent) and not part.waits(task):
                continue  # a used-up cycle waits for nothing (only for its activity to end)
            element = (part.element_id if isinstance(part, timer_events.MarshrutTimerEvent)
                       else task.task_spec.bpmn_id)
            out.append({"event": detail.name or getattr(part, "expression", None),
                        "type": detail.event_type, "element": element,
                        "value": None if detail.value is None else str(detail.value)})
    if wf.subprocess_specs:
        out += trigger_events(wf)  # event sub-processes' message/signal starts
        out += trigger_events_nested(wf)  # … and those of running sub-processes
        out += timer_scopes.waiting(wf)  # … and their armed timer starts
    return sorted(out, key=lambda e: (e["element"] or "", e["event"] or ""))


def frontier_data(wf: BpmnWorkflow) -> dict[str, Any]:
    """The data where the process stands: final data, else the latest waiting task's."""
    if wf.completed:
        return dict(wf.data)
    tasks = [t for t in wf.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.ERROR)
             if getattr(t.task_spec, "bpmn_id", None)]
    if not tasks:
        return dict(wf.data)
    return dict(max(tasks, key=lambda t: t.last_state_change).data)


def _find(exc: BaseException, kind: type[E]) -> E | None:
    """The first ``kind`` in an exception's cause/context chain (the library wraps errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = (getattr(current, "exception", None) or current.__cause__
                   or current.__context__)
    return None
