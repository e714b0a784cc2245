"""Event sub-processes inside embedded sub-processes (and called processes).

The library triggers only the event sub-processes drawn at the process level: its event
manager looks at the top workflow's spec alone. :class:`ScopedEventManager` also looks at
every *running* sub-workflow whose spec has event sub-processes, so one drawn inside an
embedded sub-process triggers only while that sub-process runs:

* a message or signal (thrown anywhere, or delivered from outside) starts it as at the
  process level;
* an error or escalation thrown inside the sub-process is caught by the sub-process's own
  event sub-process before anything outside it (a boundary event on the sub-process, an
  event sub-process of the process) — the innermost scope first, as BPMN says.

When interrupting, it cancels the rest of *that sub-process* (``MarshrutEventSubprocess``
works on its own workflow) and the sub-process then completes, so the process goes on after
it; when non-interrupting, the sub-process goes on alongside it.

The manager is installed on every workflow the engine creates or restores
(``engine.serialization``); it holds no state of its own, so nothing about it is persisted.
"""
from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.util.event import EventManager
from SpiffWorkflow.util.task import TaskState


class ScopedEventManager(EventManager):
    """``EventManager`` that also triggers the event sub-processes of running sub-workflows."""

    def catch(self, event: Any, internal: bool = True) -> int:
        target = event.target
        top = self.workflow
        if target is not None and target is not top and running(top, target):
            caught_inside = [t for t in self.tasks.values() if t.workflow == target
                             and t.task_spec.event_definition.catches(t, event)]
            if not caught_inside:
                started = trigger(top, target, event)
                if started:
                    event.target = started[0]
                    return super().catch(event, internal)
        return super().catch(event, internal)

    def update_collaboration(self, event: Any) -> None:
        # Not the library's: it starts the process's own event sub-processes with
        # ``BpmnStartTask.trigger_wf``, which connects them to the start of the shared spec
        # (see ``trigger_wf`` below).
        top = self.workflow
        if not top.completed:
            trigger(top, top, event)
        for sub in list(top.subprocesses.values()):
            if running(top, sub):
                trigger(top, sub, event)


def running(top: Any, sub: Any) -> bool:
    """Whether ``sub`` is a sub-workflow still under way (its activity started, not done)."""
    if sub is top or getattr(sub, "completed", True) \
            or getattr(sub, "parent_task_id", None) is None:
        return False
    task = top.get_task_from_id(sub.parent_task_id)
    return task is not None and task.state == TaskState.STARTED


def trigger(top: Any, sub: Any, event: Any) -> list[Any]:
    """Start (or find waiting) the event sub-processes of ``sub`` whose start event catches
    ``event``; returns their workflows."""
    start = sub.spec.start
    out = []
    for name in getattr(start, "trigger_specs", None) or ():
        sp_spec = top.subprocess_specs.get(name)
        if sp_spec is None:
            continue
        for ts in sp_spec.bpmn_start_events:
            if ts.event_definition != event.event_definition:
                continue
            found = waiting_at(top, sub, ts.name)
            if found is None:
                found = top.subprocesses[trigger_wf(sub, sp_spec.name)]
            found.correlations.update(event.correlations)
            out.append(found)
    return out


def trigger_wf(scope: Any, name: str) -> Any:
    """Start the event sub-process ``name`` of ``scope`` (a workflow); its task's id.

    As the library's ``BpmnStartTask.trigger_wf``, but without connecting the event
    sub-process to the scope's start in the spec: the spec objects are shared by every
    instance of a version (``engine.serialization`` caches them), and once connected there
    the next instance would start the event sub-process the moment it starts. Only the
    event sub-process's own side is set: the start among its inputs (the library checks that
    a task has one) and the end among its outputs (the end then waits for it)."""
    spec = scope.spec.task_specs[name]
    start, end = scope.spec.start, scope.spec.end
    if start.name not in spec._inputs:
        spec._inputs.append(start.name)
    if end not in spec.outputs:
        spec.connect(end)
    child = scope.task_tree._add_child(spec, TaskState.FUTURE)
    child.triggered = True  # kept when the start's children are synchronised with its spec
    spec._update(child)
    return child.id


def waiting_at(top: Any, sub: Any, start_name: str) -> Any:
    """An event sub-process of ``sub`` already created and still waiting at its start."""
    for candidate in top.subprocesses.values():
        parent = top.get_task_from_id(candidate.parent_task_id)
        if parent is not None and parent.workflow is sub and candidate.get_next_task(
                state=TaskState.WAITING, spec_name=start_name) is not None:
            return candidate
    return None


def install(workflow: Any) -> Any:
    """Put a ``ScopedEventManager`` on ``workflow`` (keeping what the old one tracks)."""
    if not isinstance(workflow.event_manager, ScopedEventManager):
        manager = ScopedEventManager(workflow)
        manager.tasks = workflow.event_manager.tasks
        workflow.event_manager = manager
    return workflow


def trigger_events_nested(wf: Any) -> list[dict[str, Any]]:
    """``waiting_events`` entries for the message/signal starts of the event sub-processes
    of the running sub-workflows (``correlation.trigger_events`` covers the process's)."""
    out = []
    for sub in wf.subprocesses.values():
        if not running(wf, sub):
            continue
        for name in getattr(sub.spec.start, "trigger_specs", None) or ():
            sp_spec = wf.subprocess_specs.get(name)
            for ts in sp_spec.bpmn_start_events if sp_spec is not None else ():
                definition = ts.event_definition
                if isinstance(definition, MessageEventDefinition | SignalEventDefinition):
                    out.append({"event": definition.name, "type": type(definition).__name__,
                                "element": ts.bpmn_id, "value": None})
    return out
