"""Timer events inside SpiffWorkflow, driven by the engine's clock instead of the library's.

SpiffWorkflow's own timer definitions read ``datetime.now()`` and evaluate the expression as
Python each time they are polled. Ours never look at a clock: :class:`MarshrutTimerEvent`
fires only when the engine has marked it fired. The due time is computed once, by the engine,
when the timer starts waiting (:func:`arm`, with the engine's clock and business calendar) and
kept in the waiting task's ``internal_data`` under ``marshrut_timers`` as
``{element_id: {"due": iso, "fired": bool}}`` — per element, because an event-based gateway's
task waits for several timers at once. The ``timer`` table (``engine.timer_service``) indexes
those due times; when one is due the scheduler marks it fired (:func:`fire`) and
advances the instance, and the library's own refresh makes the event run.

A *repeating* boundary timer (a timeCycle on a non-interrupting boundary event: "remind the
manager every day until the task is done") never fires its waiting task: each occurrence
(:func:`fire`, or :func:`arm` when already due) adds a fired copy of the boundary event beside
it, under the same split, whose outgoing path then runs once; the waiting task is armed for
the next occurrence (``sequence`` counts them, so ``R3`` stops after three; a missed
occurrence after downtime runs once, ``timers.next_due``) or, when the cycle is used up, stays
``done`` and no longer listed. It waits until its activity ends, which cancels it (and so its
row). The copies are complete siblings, so ending the activity never cancels a reminder path
that is still running.

Timer *start* events are never armed inside a workflow: a schedule row starts a new instance
and :func:`fire_start` lets exactly that start event through.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.parser.event_parsers import (
    BoundaryEventParser,
    IntermediateCatchEventParser,
    StartEventParser,
)
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.serializer.helpers import EventDefinitionConverter
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util import PendingBpmnEvent
from SpiffWorkflow.util.task import TaskState

from . import timers
from .timers import TimerSpec, boundary_kind, event_subprocess_kind, read_timer

KEY = "marshrut_timers"
#: ``type`` of a timer in ``waiting_events`` (what the library's timers report too).
TIMER_EVENT_TYPE = "TimerEventDefinition"
#: kinds that fire more than once (on a non-interrupting boundary event; deploy checks that)
REPEATING = (timers.CYCLE, timers.CRON)


class TimerArmError(ValueError):
    """A timer's due time cannot be computed (the instance gets an incident on the element)."""

    def __init__(self, element_id: str, message: str) -> None:
        super().__init__(f"timer {element_id}: {message}")
        self.element_id = element_id


class MarshrutTimerEvent(TimerEventDefinition):
    """A timer whose firing is decided by the engine (see the module docstring)."""

    def __init__(self, name: str, expression: str, *, element_id: str, kind: str,
                 timezone: str, business_hours: bool = False,
                 description: str | None = None) -> None:
        super().__init__(name, expression, description=description)
        self.element_id = element_id
        self.kind = kind
        self.timezone = timezone
        self.business_hours = business_hours

    @property
    def spec(self) -> TimerSpec:
        return TimerSpec(self.element_id, self.kind, self.expression, self.timezone,
                         self.business_hours)

    def has_fired(self, my_task: Any) -> bool:
        return bool(timer_state(my_task, self.element_id).get("fired"))

    def details(self, my_task: Any) -> PendingBpmnEvent:
        state = timer_state(my_task, self.element_id)
        return PendingBpmnEvent(self.name, TIMER_EVENT_TYPE,
                                None if state.get("done") else state.get("due"))

    def waits(self, my_task: Any) -> bool:
        """False for a repeating timer whose occurrences are used up (it only waits to be
        cancelled with its activity: nothing to list as awaited)."""
        return not timer_state(my_task, self.element_id).get("done")

    @property
    def repeating(self) -> bool:
        return self.kind in REPEATING

    def reset(self, my_task: Any) -> None:
        states = my_task.internal_data.get(KEY)
        if isinstance(states, dict):
            states.pop(self.element_id, None)
        super().reset(my_task)

    def __eq__(self, other: object) -> bool:
        # An event-based gateway finds "its" definition with list.index(): compare by element.
        return isinstance(other, MarshrutTimerEvent) and other.element_id == self.element_id

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


class MarshrutTimerConverter(EventDefinitionConverter):
    def to_dict(self, event_definition: MarshrutTimerEvent) -> dict[str, Any]:
        dct = super().to_dict(event_definition)
        dct.update(expression=event_definition.expression,
                   element_id=event_definition.element_id, kind=event_definition.kind,
                   timezone=event_definition.timezone,
                   business_hours=event_definition.business_hours)
        return dct


def _parse_timer_event(self: Any, event: Any) -> MarshrutTimerEvent:
    """Replaces the library parsers' ``parse_timer_event`` (the XML was checked before)."""
    problems: list[tuple[str, str]] = []
    default_tz = getattr(self.process_parser.parser, "default_timezone", "UTC")
    scoped = event_subprocess_kind(self.node)
    spec = read_timer(self.node, default_tz, problems=problems, event_subprocess=scoped,
                      start=self.node.tag == full_tag("startEvent") and scoped is None,
                      boundary=boundary_kind(self.node))
    if spec is None:
        raise ValidationException("; ".join(m for _e, m in problems) or "bad timer",
                                  node=self.node, file_name=self.filename)
    return MarshrutTimerEvent(self.node.get("name") or spec.element_id, spec.expression,
                              element_id=spec.element_id, kind=spec.kind,
                              timezone=spec.timezone, business_hours=spec.business_hours,
                              description=self.get_event_description(event))


class TimerStartEventParser(StartEventParser):
    parse_timer_event = _parse_timer_event


class TimerCatchEventParser(IntermediateCatchEventParser):
    parse_timer_event = _parse_timer_event


class TimerBoundaryEventParser(BoundaryEventParser):
    parse_timer_event = _parse_timer_event


# --- timers of a running workflow ---------------------------------------------------------------

def timer_state(task: Any, element_id: str) -> dict[str, Any]:
    states = task.internal_data.get(KEY)
    value = states.get(element_id) if isinstance(states, dict) else None
    return value if isinstance(value, dict) else {}


def timers_of(definition: Any) -> list[MarshrutTimerEvent]:
    parts = (definition.event_definitions if isinstance(definition, MultipleEventDefinition)
             else [definition])
    return [p for p in parts if isinstance(p, MarshrutTimerEvent)]


@dataclass(frozen=True)
class PendingTimer:
    """A timer an instance waits for: the waiting task, the timer element, when it is due."""

    task_id: str
    element_id: str
    due: dt.datetime
    kind: str  # "boundary" or "catch"
    expression: str


def _waiting(wf: Any) -> list[tuple[Any, MarshrutTimerEvent]]:
    out = []
    for task in list(wf.event_manager.tasks.values()):
        if isinstance(task.task_spec, StartEvent):
            continue  # schedules start instances; a start event never waits inside one
        out += [(task, d) for d in timers_of(task.task_spec.event_definition)]
    return out


def arm(wf: Any, now: dt.datetime,
        due_of: Callable[[TimerSpec], dt.datetime]) -> list[tuple[str, str]]:
    """Give every newly waiting timer its due time (``due_of``; a repeating one its first
    occurrence); mark those already due as fired (a repeating one: run that occurrence) and
    return them as (task id, element id) (the workflow can move on if any).
    Raises ``TimerArmError`` naming the element whose due time cannot be computed."""
    fired = []
    for task, definition in _waiting(wf):
        state = timer_state(task, definition.element_id)
        if not state:
            try:
                state = _first(definition, now, due_of)
            except (ValueError, OverflowError) as exc:
                raise TimerArmError(definition.element_id, str(exc)) from None
            task.internal_data.setdefault(KEY, {})[definition.element_id] = state
        if state.get("fired") or state.get("done") \
                or dt.datetime.fromisoformat(state["due"]) > now:
            continue
        if definition.repeating:
            _occur(task, definition, state, now)
        else:
            state["fired"] = True
        fired.append((str(task.id), definition.element_id))
    return fired


def _first(definition: MarshrutTimerEvent, now: dt.datetime,
           due_of: Callable[[TimerSpec], dt.datetime]) -> dict[str, Any]:
    if not definition.repeating:
        return {"due": due_of(definition.spec).isoformat(), "fired": False}
    first = timers.first_due(definition.spec, now)
    if first is None:  # an R5 whose occurrences are all in the past: it never fires
        return {"done": True, "fired": False}
    return {"due": first[0].isoformat(), "fired": False, "sequence": first[1]}


def _occur(task: Any, definition: MarshrutTimerEvent, state: dict[str, Any],
           now: dt.datetime) -> None:
    """Run one occurrence of the repeating timer that ``task`` waits with: a fired copy of
    the boundary event beside it runs the outgoing path once; ``task`` is armed for the next
    occurrence, or done."""
    due, sequence = state["due"], int(state.get("sequence") or 0)
    nxt = timers.next_due(definition.spec, dt.datetime.fromisoformat(due), sequence, now)
    if nxt is None:
        state.update(done=True)
    else:
        state.update(due=nxt[0].isoformat(), sequence=nxt[1])
    copy = task.parent._add_child(task.task_spec, TaskState.FUTURE)
    copy.triggered = True  # not one of the split's predicted outputs: never pruned
    copy.internal_data[KEY] = {definition.element_id: {"due": due, "fired": True,
                                                       "sequence": sequence}}
    copy.task_spec._predict(copy, mask=TaskState.NOT_FINISHED_MASK)
    copy.task_spec._update(copy)


def pending(wf: Any) -> list[PendingTimer]:
    """Armed timers that have not fired yet, for the ``timer`` table."""
    out = []
    for task, definition in _waiting(wf):
        state = timer_state(task, definition.element_id)
        if state.get("due") and not state.get("fired") and not state.get("done"):
            kind = "boundary" if hasattr(task.task_spec, "cancel_activity") else "catch"
            out.append(PendingTimer(str(task.id), definition.element_id,
                                    dt.datetime.fromisoformat(state["due"]), kind,
                                    definition.expression))
    return out


def mark_fired(task: Any, element_id: str) -> bool:
    """Mark the armed timer ``element_id`` of a waiting task fired; False if the task no
    longer waits for it (completed, cancelled, or fired already)."""
    if task is None or task.id not in task.workflow.top_workflow.event_manager.tasks:
        return False
    state = timer_state(task, element_id)
    if not state or state.get("fired") or state.get("done"):
        return False
    state["fired"] = True
    return True


def fire(task: Any, element_id: str, now: dt.datetime) -> bool:
    """The scheduler fires the timer ``element_id`` of a waiting task: a one-off timer is
    marked fired (:func:`mark_fired`), a repeating one runs its occurrence and is armed for
    the next. False if the task no longer waits for it."""
    if task is None:
        return False
    definition = next((d for d in timers_of(getattr(task.task_spec, "event_definition", None))
                       if d.element_id == element_id), None)
    if definition is None or not definition.repeating:
        return mark_fired(task, element_id)
    if task.id not in task.workflow.top_workflow.event_manager.tasks:
        return False
    state = timer_state(task, element_id)
    if not state.get("due") or state.get("fired") or state.get("done"):
        return False
    _occur(task, definition, state, now)
    return True


def fire_start(task: Any) -> None:
    """Let a timer start event through (a schedule fired): it becomes ready to run."""
    for definition in timers_of(task.task_spec.event_definition):
        task.internal_data.setdefault(KEY, {})[definition.element_id] = {"fired": True}
    task.task_spec._update(task)
