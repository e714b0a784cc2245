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
"""
from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.conditional import ConditionalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

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
        task.data.update(payload)
        task.task_spec._update(task)
        if task.state != TaskState.WAITING:
            fired.append(task.task_spec.bpmn_id)
    return fired
