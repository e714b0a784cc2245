"""Engine-side failures thrown as BPMN errors, so a diagram can catch them.

A service operation that fails for good (not retryable, or out of attempts) becomes an incident
— unless an error boundary event can catch it: on the service task itself, else on an enclosing
sub-process / call activity, else an error start event of an event sub-process on the way out.
The error code is the operation's (``ServiceCallError.error_code``; a CRM error's code such as
``validation_error``, ``not_found``) or ``service_call_failed``; a boundary event without an
errorRef catches every code. The catching path gets ``error = {"code", "message", "element",
"operation"}`` in its data.
"""
from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.util.task import TaskState

from .event_scopes import running, trigger

DEFAULT_CODE = "service_call_failed"


def _boundary_catchers(task: Any, event: BpmnEvent) -> list[Any]:
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return []
    found = [t for t in parent.children
             if t is not task and isinstance(t.task_spec, BoundaryEvent)
             and t.task_spec.catches(t, event)]
    # a boundary event naming the code wins over a catch-all one
    return sorted(found, key=lambda t: getattr(t.task_spec.event_definition, "code", None)
                  is None)


def _event_subprocess_catchers(workflow: Any, event: BpmnEvent) -> list[Any]:
    top = workflow.top_workflow
    out = []
    for t in top.event_manager.tasks.values():
        spec = t.task_spec
        if isinstance(spec, StartEvent) and isinstance(spec, CatchingEvent) \
                and t.state == TaskState.WAITING \
                and getattr(t.workflow, "parent_workflow", None) is workflow \
                and spec.event_definition.catches(t, event):
            out.append(t)
    return out


def find_catcher(task: Any, event: BpmnEvent) -> Any | None:
    """The waiting catch event that handles ``event`` thrown at ``task`` (innermost first)."""
    current = task
    while current is not None:
        found = _boundary_catchers(current, event)
        if found:
            return found[0]
        workflow = current.workflow
        found = _event_subprocess_catchers(workflow, event)
        if not found and running(workflow.top_workflow, workflow):
            # an embedded sub-process's own event sub-processes (``engine.event_scopes``)
            trigger(workflow.top_workflow, workflow, event)
            found = _event_subprocess_catchers(workflow, event)
        if found:
            return found[0]
        parent_id = getattr(workflow, "parent_task_id", None)
        if parent_id is None:
            # the process's event sub-processes with an error start: the library creates
            # the one whose start matches, which then waits to catch it
            workflow.event_manager.update_collaboration(event)
            found = _event_subprocess_catchers(workflow, event)
            return found[0] if found else None
        current = workflow.top_workflow.get_task_from_id(parent_id)
    return None


def throw_error(task: Any, code: str | None, message: str, operation: str) -> str | None:
    """Hand a failure of ``task`` to the error event that catches it; returns the catching
    element's id, or None when nothing catches (the caller raises an incident)."""
    code = code or DEFAULT_CODE
    payload = {"error": {"code": code, "message": message[:2000],
                         "element": task.task_spec.bpmn_id, "operation": operation}}
    event = BpmnEvent(ErrorEventDefinition(code, code), payload)
    catcher = find_catcher(task, event)
    if catcher is None:
        return None
    catcher.task_spec.catch(catcher, event)
    catcher.task_spec._update(catcher)
    return catcher.task_spec.bpmn_id
