"""Events for running instances: what an instance can catch, and CRM events delivered to it.

Two parts:

* :func:`trigger_events` — the message/signal start events of a process's event
  sub-processes. The library does not list them among the waiting tasks (it creates the
  sub-process when the event arrives), so ``executor.waiting_events`` adds them: an instance
  "waits" for them as long as it runs.
* :class:`Correlator` — a CRM event (``deal.stage_changed`` of deal 7 …) reaches the running
  instances *of that record* only: every one waiting for that message gets it (intermediate
  catch, receive task, boundary, event-based gateway, event sub-process), with the record's
  fresh snapshot as payload; and conditional events of those instances are evaluated again
  on the fresh data ("until the deal's amount exceeds …"). An instance never receives an
  event its own write caused (no self-feeding loop).
* Signals are broadcast (as in Camunda, and unlike messages): a signal an instance throws
  reaches every *other* running instance waiting for it —
  of any record and any process (intermediate catch, boundary, event-based gateway,
  signal start of an event sub-process). The catcher gets ``signal = {"name",
  "from_instance"}`` (not the thrower's data: use a message to pass data to one record's
  instances). A signal caught inside the throwing instance reaches the others too
  (``engine.signals``).
* A broadcast also starts one instance of each active definition with a signal start event
  for it (as a CRM event starts the definitions with its message start event): its data is
  the thrower's data plus ``signal = {"name", "from_instance"}``, its record the thrower's.
  Not the thrower's own process (no self-feeding loop, as for CRM events). The starts are
  part of the thrower's transaction, whose row lock lets one worker only throw it; a
  broadcast from outside an instance (``Engine.throw_signal``) may carry the id of the event
  that caused it, and ``process_instance``'s UNIQUE (event_id, definition_id) then lets a
  repeat or a racing worker start nothing twice.
"""
from __future__ import annotations

import copy
import logging
import threading
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.conditional import ConditionalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import String, cast, select
from sqlalchemy.exc import IntegrityError, OperationalError

from .data import to_json
from .errors import AlreadyStarted, Conflict, EngineError
from .persistence import add_history, conflicts_guarded, lock_instance
from .ports import StartRequest
from .store import ProcessDefinition, ProcessInstance, Status

log = logging.getLogger(__name__)

CONDITIONAL_TYPE = "ConditionalEventDefinition"
MESSAGE_TYPE = "MessageEventDefinition"


def trigger_events(wf: Any) -> list[dict[str, Any]]:
    """``waiting_events`` entries for the message/signal starts of event sub-processes."""
    out = []
    start = getattr(wf.spec, "start", None)
    for name in getattr(start, "trigger_specs", None) or ():
        sp_spec = wf.subprocess_specs.get(name)
        if sp_spec is None:
            continue
        for ts in sp_spec.bpmn_start_events:
            definition = ts.event_definition
            if isinstance(definition, MessageEventDefinition | SignalEventDefinition):
                out.append({"event": definition.name, "type": type(definition).__name__,
                            "element": ts.bpmn_id, "value": None})
    return out


def conditional_tasks(wf: Any) -> list[Any]:
    """Tasks waiting on a conditional event (catch, boundary)."""
    return [t for t in wf.event_manager.tasks.values()
            if isinstance(t.task_spec.event_definition, ConditionalEventDefinition)
            and t.state == TaskState.WAITING]


def recheck_conditions(wf: Any, payload: dict[str, Any]) -> list[str]:
    """Put the fresh record data into each waiting conditional event's data and evaluate its
    condition again; returns the elements whose condition now holds."""
    fired = []
    for task in conditional_tasks(wf):
        # a waiting task re-inherits its parent's data when updated: refresh both
        if task.parent is not None:
            task.parent.data.update(copy.deepcopy(payload))
        task.data.update(copy.deepcopy(payload))
        task.task_spec._update(task)
        if task.state != TaskState.WAITING:
            fired.append(task.task_spec.bpmn_id)
    return fired


MESSAGE_TYPES = ("MessageEventDefinition",)
SIGNAL_TYPE = "SignalEventDefinition"


def wants(catching: set[str], event_type: str) -> bool:
    """Whether an event of ``event_type`` may concern a running instance (``catching``: the
    union of the definitions' ``catches``)."""
    return event_type in catching or "*" in catching


#: how many instances deep a chain of thrown messages may go (A tells B tells C …)
MAX_HOPS = 5


class Correlator:
    """Delivers CRM events to the running instances of the record (module docstring)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._hops = threading.local()

    def send_thrown(self, run: Any, events: list[Any]) -> None:
        """Messages an instance threw that nothing inside it caught (send tasks, message
        throw/end events) go to the other running instances of the same record, as
        ``message = {"name", "from_instance", "data"}``. Deliveries made while delivering
        are queued and run one after the other (no recursion); a chain longer than
        ``MAX_HOPS`` stops with a history note instead of ping-ponging for ever."""
        inst = run.instance
        state = self._hops
        hop = getattr(state, "hop", 0) + 1
        items = []
        for e in events:
            definition = e.event_definition
            kind = ("message" if isinstance(definition, MessageEventDefinition) else
                    "signal" if isinstance(definition, SignalEventDefinition) else None)
            if kind is not None:
                items.append((kind, run.session, run.now, inst.id, inst.entity_type,
                              inst.entity_id, definition.name, e.payload or {}, hop))
        queue = getattr(state, "queue", None)
        if queue is not None:  # inside a delivery: the outermost call runs it
            queue.extend(items)
            return
        state.queue = list(items)
        try:
            self._drain()
        finally:
            state.queue = None
            state.hop = 0

    def throw(self, session: Any, signal: str, payload: dict[str, Any] | None = None, *,
              entity_type: str | None = None, entity_id: int | None = None,
              event_id: int | None = None) -> tuple[list[int], list[int]]:
        """Broadcast ``signal`` from outside any instance (module docstring); what the
        instances it moves or starts throw in turn is passed on after it. Returns
        (moved, started) as ``broadcast``."""
        state = self._hops
        if getattr(state, "queue", None) is not None:  # inside a delivery already
            return self.broadcast(session, signal, None, payload, entity_type=entity_type,
                                  entity_id=entity_id, event_id=event_id)
        state.queue, state.hop = [], 1
        try:
            result = self.broadcast(session, signal, None, payload, entity_type=entity_type,
                                    entity_id=entity_id, event_id=event_id)
            self._drain()
        finally:
            state.queue = None
            state.hop = 0
        return result

    def _drain(self) -> None:
        state = self._hops
        while state.queue:
            kind, session, at, sender, etype, eid, name, data, hop = state.queue.pop(0)
            if hop > MAX_HOPS:
                add_history(session, sender, at, f"{kind}_dropped", None,
                            f"'{name}' not passed on: {MAX_HOPS} instances in a row "
                            f"sent {kind}s to each other")
                continue
            state.hop = hop
            if kind == "signal":
                moved, started = self.broadcast(session, name, sender, data,
                                                entity_type=etype, entity_id=eid)
                add_history(session, sender, at, "signal_sent", None,
                            f"signal '{name}' reached instance"
                            f"{'s' if len(moved) != 1 else ''} "
                            f"{', '.join(map(str, moved))}" if moved else
                            f"signal '{name}': no other instance waited for it")
                if started:
                    add_history(session, sender, at, "signal_started", None,
                                f"signal '{name}' started instance"
                                f"{'s' if len(started) != 1 else ''} "
                                f"{', '.join(map(str, started))}")
                continue
            payload = {"message": {"name": name, "from_instance": sender, "data": data}}
            moved = self.deliver(session, name, etype, eid, payload, skip_instance=sender)
            add_history(session, sender, at, "message_sent", None,
                        f"sent '{name}' to instance{'s' if len(moved) != 1 else ''} "
                        f"{', '.join(map(str, moved))}" if moved else
                        f"sent '{name}'; no instance of the record waited for it")

    def broadcast(self, session: Any, signal: str, sender: int | None,
                  payload: dict[str, Any] | None = None, *, entity_type: str | None = None,
                  entity_id: int | None = None, event_id: int | None = None
                  ) -> tuple[list[int], list[int]]:
        """Hand ``signal`` to every running instance (any record, any process) waiting for
        it, except ``sender``, and start the definitions with a signal start event for it
        (module docstring); each in its own savepoint. Returns (the ids of the instances
        that moved, the ids of the instances started)."""
        moved = self._catch_everywhere(session, signal, sender)
        return moved, self._start_listeners(session, signal, sender, payload or {},
                                            entity_type, entity_id, event_id)

    def _start_listeners(self, session: Any, signal: str, sender: int | None,
                         payload: dict[str, Any], entity_type: str | None,
                         entity_id: int | None, event_id: int | None) -> list[int]:
        definitions = self.engine.definitions_for_signal(session, signal)
        if not definitions:
            return []
        own = None
        if sender is not None:
            own = session.scalar(select(ProcessDefinition.key)
                                 .join(ProcessInstance,
                                       ProcessInstance.definition_id == ProcessDefinition.id)
                                 .where(ProcessInstance.id == sender))
        started = []
        for definition in definitions:
            if definition.key == own:
                continue  # its own throw: no self-feeding loop
            data = copy.deepcopy(payload)
            data["signal"] = {"name": signal, "from_instance": sender}
            request = StartRequest(data=data, entity_type=entity_type, entity_id=entity_id,
                                   event_id=event_id, signal=signal)
            try:
                with session.begin_nested():
                    inst = self.engine.start(session, definition, request)
            except (AlreadyStarted, IntegrityError):
                continue  # this broadcast started it already (a repeat, a racing worker)
            except (OperationalError, Conflict):
                raise  # a lost race dooms the transaction: retried as a whole, none lost
            except EngineError as exc:
                log.warning("signal %s could not start %s: %s", signal, definition.key, exc)
                continue
            started.append(inst.id)
        return started

    def _catch_everywhere(self, session: Any, signal: str, sender: int | None) -> list[int]:
        rows = session.execute(
            select(ProcessInstance.id, ProcessInstance.waiting)
            .where(ProcessInstance.status == Status.WAITING,
                   cast(ProcessInstance.waiting, String).like(f"%{SIGNAL_TYPE}%"))
            .order_by(ProcessInstance.id)).all()
        moved = []
        for instance_id, waiting in rows:
            if instance_id == sender or not _waits_for_signal(waiting, signal):
                continue
            try:
                with session.begin_nested():
                    if self._signal(session, instance_id, signal, sender):
                        moved.append(instance_id)
            except (OperationalError, Conflict):
                # a lost race (SQLite's stale snapshot): the whole transaction fails and is
                # run again, rather than this instance silently missing the signal
                raise
            except EngineError as exc:
                log.warning("signal %s to instance %s failed: %s", signal, instance_id, exc)
        return moved

    def _signal(self, session: Any, instance_id: int, signal: str, sender: int | None) -> bool:
        with conflicts_guarded():
            inst = lock_instance(session, instance_id)
            if inst.status != Status.WAITING:
                return False
            run = self.engine._load(session, inst)
            if not _waits_for_signal(run.waiting_events(), signal):
                return False
            event = BpmnEvent(SignalEventDefinition(signal),
                              {"signal": {"name": signal, "from_instance": sender}})
            if run.wf.event_manager.catch(event, internal=False) == 0:
                return False
            run.record("signal", None, f"received signal '{signal}'"
                       + (f" from instance {sender}" if sender is not None else ""))
            run.advance()
            run.save()
            session.flush()
        return True

    @staticmethod
    def catching(session: Any) -> set[str]:
        """Message names any deployed definition's instances can catch (all versions: an
        old version's instances still run)."""
        rows = session.execute(select(ProcessDefinition.catches)
                               .where(ProcessDefinition.catches.isnot(None))).scalars()
        return {name for names in rows for name in names or ()}

    def deliver(self, session: Any, message: str, entity_type: str | None,
                entity_id: int | None, payload: dict[str, Any], *,
                skip_instance: int | None = None) -> list[int]:
        """Hand ``message`` (with the record's fresh data ``payload``) to each waiting
        instance of the record that waits for it, and re-evaluate their conditional events.
        Each instance in its own savepoint: one that fails does not stop the others.
        Returns the ids of the instances that moved."""
        if entity_type is None or entity_id is None:
            return []
        rows = session.execute(
            select(ProcessInstance.id, ProcessInstance.waiting)
            .where(ProcessInstance.entity_type == entity_type,
                   ProcessInstance.entity_id == entity_id,
                   ProcessInstance.status == Status.WAITING)
            .order_by(ProcessInstance.id)).all()
        moved = []
        for instance_id, waiting in rows:
            if instance_id == skip_instance:
                continue  # its own write: no self-feeding loop
            waiting = waiting or []
            message_wait = any(w.get("event") == message and w.get("type") in MESSAGE_TYPES
                               for w in waiting)
            condition_wait = any(w.get("type") == CONDITIONAL_TYPE for w in waiting)
            if not (message_wait or condition_wait):
                continue
            try:
                with session.begin_nested():
                    if self._notify(session, instance_id, message, payload, message_wait):
                        moved.append(instance_id)
            except OperationalError:
                raise
            except EngineError as exc:
                log.warning("delivering %s to instance %s failed: %s", message, instance_id,
                            exc)
        return moved

    def _notify(self, session: Any, instance_id: int, message: str, payload: dict[str, Any],
                message_wait: bool) -> bool:
        with conflicts_guarded():
            inst = lock_instance(session, instance_id)
            if inst.status != Status.WAITING:
                return False
            run = self.engine._load(session, inst)
            data = to_json(payload, where="payload")
            moved = False
            if message_wait and any(e["event"] == message and e["type"] in MESSAGE_TYPES
                                    for e in run.waiting_events()):
                run.deliver(message, data)
                moved = True
            for element in recheck_conditions(run.wf, data):
                run.record("condition_met", element, f"condition of {element} holds after "
                                                     f"'{message}'")
                moved = True
            if not moved:
                return False
            run.advance()
            run.save()
            session.flush()
        return True


def _waits_for_signal(waiting: list[dict[str, Any]] | None, signal: str) -> bool:
    return any(w.get("type") == SIGNAL_TYPE and w.get("event") == signal
               for w in waiting or ())
