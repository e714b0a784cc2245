"""Timer start events of event sub-processes: "if the deal is still not handled after 2 days,
notify the head of sales" (non-interrupting), "after 5 days cancel and hand over"
(interrupting).

The parser (``MarshrutProcessParser``) makes such an event sub-process *triggered*, like one
with a message or signal start, and this module is its clock. A *scope* is the process, or an
embedded sub-process or called process while it runs (``engine.event_scopes.running``):

* Armed when the scope is under way (:func:`arm`, from every ``InstanceRun.advance``): the
  due time of each timer start of the scope's event sub-processes is kept in the internal
  data of the scope's ``Start`` task (``marshrut_timers``, the same form as other timers) —
  so it is saved and restored with the instance — and indexed in the ``timer`` table
  (:func:`pending`, kind ``event_subprocess``, the ``Start`` task's id).
* Fired by the scheduler (:func:`fire`) or at once when already due (:func:`arm`): the event
  sub-process is triggered and its start event let through. ``MarshrutEventSubprocess``
  gives it the current data; an interrupting one cancels the rest of its scope, a
  non-interrupting one runs beside it and, for a timeCycle, is armed for the next occurrence.
* Dropped when the scope ends (or is interrupted): the timer is no longer listed, so
  ``TimerService.sync_instance`` cancels its row.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from SpiffWorkflow.bpmn.specs.defaults import EventSubprocess
from SpiffWorkflow.util.task import TaskState

from . import timers
from .event_scopes import running, trigger_wf
from .parser import marshrut_info
from .timer_events import (
    KEY,
    TIMER_EVENT_TYPE,
    MarshrutTimerEvent,
    PendingTimer,
    TimerArmError,
    fire_start,
    timer_state,
    timers_of,
)
from .timers import TimerSpec

#: ``Timer.kind`` of these rows (``engine.store.TimerKind.EVENT_SUBPROCESS``)
KIND = "event_subprocess"
_REPEATING = (timers.CYCLE, timers.CRON)


def scopes(wf: Any) -> list[Any]:
    """The workflows whose event sub-processes may start now: the process while it runs and
    every sub-workflow under way."""
    out = [] if wf.completed else [wf]
    return out + [sub for sub in wf.subprocesses.values() if running(wf, sub)]


def timer_starts(wf: Any, scope: Any) -> list[tuple[str, Any, MarshrutTimerEvent]]:
    """(event sub-process spec name, start event spec, timer) of the scope's timer starts."""
    out = []
    for name in getattr(scope.spec.start, "trigger_specs", None) or ():
        sp_spec = wf.subprocess_specs.get(name)
        for ts in sp_spec.bpmn_start_events if sp_spec is not None else ():
            out += [(name, ts, d) for d in timers_of(ts.event_definition)]
    return out


def interrupted(scope: Any) -> bool:
    """Whether an interrupting event sub-process of ``scope`` runs (the rest was cancelled:
    no other event sub-process of the scope starts any more)."""
    return any(isinstance(t.task_spec, EventSubprocess)
               and marshrut_info(t.task_spec).get("interrupting", True)
               and t.has_state(TaskState.NOT_FINISHED_MASK)
               for t in scope.tasks.values())


def _armed(wf: Any) -> list[tuple[Any, str, Any, MarshrutTimerEvent]]:
    """(scope, spec name, start spec, timer) of every timer start that may fire now."""
    out = []
    for scope in scopes(wf):
        starts = timer_starts(wf, scope)
        if starts and not interrupted(scope):
            out += [(scope, *t) for t in starts]
    return out


def _first(spec: TimerSpec, now: dt.datetime,
           due_of: Callable[[TimerSpec], dt.datetime]) -> dict[str, Any]:
    if spec.kind in _REPEATING:
        first = timers.first_due(spec, now)
        if first is None:  # an R5 whose repeats are all in the past …
            return {"fired": True}
        return {"due": first[0].isoformat(), "fired": False, "sequence": first[1]}
    return {"due": due_of(spec).isoformat(), "fired": False, "sequence": 0}


def arm(wf: Any, now: dt.datetime,
        due_of: Callable[[TimerSpec], dt.datetime]) -> list[tuple[str, str]]:
    """Give the timer starts of scopes that have just started their due time; trigger those
    already due and return them as (Start task id, element id). Raises ``TimerArmError``
    naming the element whose due time cannot be computed."""
    fired = []
    for scope, name, ts, definition in _armed(wf):
        if interrupted(scope):
            continue  # an earlier timer of this scope interrupted it just now
        anchor = scope.task_tree
        states = anchor.internal_data.setdefault(KEY, {})
        state = states.get(definition.element_id)
        if not isinstance(state, dict):
            try:
                state = states[definition.element_id] = _first(definition.spec, now, due_of)
            except (ValueError, OverflowError) as exc:
                raise TimerArmError(definition.element_id, str(exc)) from None
        if not state.get("fired") and dt.datetime.fromisoformat(state["due"]) <= now:
            _trigger(wf, scope, name, ts, definition, state, now)
            fired.append((str(anchor.id), definition.element_id))
    return fired


def pending(wf: Any) -> list[PendingTimer]:
    """The armed timer starts that have not fired, for the ``timer`` table."""
    out = []
    for scope, _name, _ts, definition in _armed(wf):
        state = timer_state(scope.task_tree, definition.element_id)
        if state.get("due") and not state.get("fired"):
            out.append(PendingTimer(str(scope.task_tree.id), definition.element_id,
                                    dt.datetime.fromisoformat(state["due"]), KIND,
                                    definition.expression))
    return out


def waiting(wf: Any) -> list[dict[str, Any]]:
    """``waiting_events`` entries for the armed timer starts (as other timers list)."""
    out = []
    for scope, _name, _ts, d in _armed(wf):
        state = timer_state(scope.task_tree, d.element_id)
        if state.get("due") and not state.get("fired"):
            out.append({"event": d.name, "type": TIMER_EVENT_TYPE, "element": d.element_id,
                        "value": state["due"]})
    return out


def fire(wf: Any, anchor: Any, element_id: str, now: dt.datetime) -> bool:
    """The scheduler fires the row of ``element_id`` kept on ``anchor`` (a scope's ``Start``
    task): trigger its event sub-process. False if the scope no longer waits for it (it
    ended, was interrupted, or the timer fired already)."""
    if anchor is None:
        return False
    for scope, name, ts, definition in _armed(wf):
        if scope.task_tree is anchor and definition.element_id == element_id:
            state = timer_state(anchor, element_id)
            if not state.get("due") or state.get("fired"):
                return False
            _trigger(wf, scope, name, ts, definition, state, now)
            return True
    return False


def _trigger(wf: Any, scope: Any, name: str, ts: Any, definition: MarshrutTimerEvent,
             state: dict[str, Any], now: dt.datetime) -> None:
    spec = definition.spec
    nxt = None
    es_spec = scope.spec.task_specs.get(name)
    if spec.kind in _REPEATING and not marshrut_info(es_spec).get("interrupting", True):
        nxt = timers.next_due(spec, dt.datetime.fromisoformat(state["due"]),
                              int(state.get("sequence") or 0), now)
    if nxt is None:
        state["fired"] = True
    else:  # a cycle: armed again for its next occurrence
        state.update(due=nxt[0].isoformat(), sequence=nxt[1])
    child_id = trigger_wf(scope, name)
    started = wf.subprocesses[child_id].get_next_task(state=TaskState.WAITING,
                                                      spec_name=ts.name)
    if started is not None:
        fire_start(started)

