"""Start pre-filter: a rule whose start condition cannot match its event skips the workflow run.

Many rules begin with a test of the event's record and end at once when it fails (the
key-client rule for a deal of another company): start event → exclusive gateway → its
*default* flow → a plain end event. Running such a start through SpiffWorkflow (build the
workflow, run five tasks, serialize it) costs a few milliseconds per event and per rule for
an outcome that is known in advance from the diagram and the gateway's conditions.

**Derivation.** From the parsed diagram (the spec objects the serializer caches per
definition version, so once per deployed version and message), :func:`derive` finds, for a
message start event, this exact shape and nothing more:

* the process has no subprocesses or call activities, no data objects, and the library's
  start task leads only to its start event(s) (no event subprocess waiting beside them);
* exactly one start event catches the message, with one outgoing flow, no data
  associations, no scripts and no Marshrut extensions;
* that flow ends at an exclusive gateway with a default flow whose target is a plain end
  event (no event definition: not terminate, error, escalation, message…), with no
  scripts or data associations on the gateway or the end event.

Anything else (a task, a timer, an intermediate event on the way, a parallel gateway) gets no
pre-filter: the full run decides.

**Evaluation.** :meth:`StartFilter.skips` evaluates the gateway's non-default conditions in
the order SpiffWorkflow does (``ExclusiveChoice._run_hook``: the first truthy one is taken),
through the same sandbox, on the same data the gateway task would see (the start data with
the process variables; a message start adds nothing to the data). It answers "skip" only
when every condition is falsy. A condition that raises, data above the engine's data limit,
or any doubt → no skip: the full run takes place and records what it records (an incident
names the failing element as before).

**What a skipped start records** — exactly the rows the full run would have written for
the same outcome, so the instance list, the viewer's path and the heatmap cannot tell the
two apart: the ``process_instance`` row (status ``completed``, ``state`` =
``{"final_data": data}``, nothing waiting, ``ended_at``), and its history: ``started``,
``left`` the start event, ``left`` the gateway (``took flow <default flow> to <end>``),
``left`` the end event, ``finished``. The instance keeps its (event, definition)
uniqueness, so the at-most-once guarantee and the dispatcher's "already started" checks
are unchanged. The only difference is one fewer write of the instance row: it is inserted
completed (its optimistic-lock ``version`` is 1 where a full run leaves 2). Keeping the
rows, rather than writing nothing, is deliberate: the heatmap counts every start per
element, and "why did this rule not route my deal?" is answered in the viewer by the
instance that took the default flow.
"""
from __future__ import annotations

from collections import ChainMap
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.control import StartEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.exclusive_gateway import ExclusiveGateway

from .errors import SandboxError
from .parser import marshrut_info
from .sandbox import Sandbox


@dataclass(frozen=True)
class StartFilter:
    """start event → exclusive gateway → (default flow) → end event, for one message."""

    start: str  # element ids
    gateway: str
    end: str
    default_flow: str
    #: the gateway's other outgoing conditions, in the order the library evaluates them
    conditions: tuple[str, ...]

    def skips(self, sandbox: Sandbox, data: dict[str, Any]) -> bool:
        """True when no condition holds: the run would take the default flow to the end."""
        names = ChainMap(data, {})  # as the script engine passes task data (no data objects)
        for expression in self.conditions:
            try:
                if sandbox.evaluate(expression, names):
                    return False
            except (SandboxError, Exception):  # noqa: BLE001 - the full run reports it
                return False
        return True

    def history(self) -> list[tuple[str, str | None, str]]:
        """(event, element, message) of the rows after ``started``, as the full run writes
        them (``engine.executor.InstanceRun._did_complete`` and ``save``)."""
        return [("left", self.start, ""),
                ("left", self.gateway, f"took flow {self.default_flow} to {self.end}"),
                ("left", self.end, ""),
                ("finished", None, "process completed")]


def _plain(spec: Any) -> bool:
    """No data associations, scripts or io specification on this element."""
    return not (getattr(spec, "data_input_associations", None)
                or getattr(spec, "data_output_associations", None)
                or getattr(spec, "io_specification", None)
                or getattr(spec, "prescript", None) or getattr(spec, "postscript", None))


def derive(spec: Any, subprocess_specs: dict[str, Any], message: str) -> StartFilter | None:
    """The pre-filter of ``message``'s start in this process spec, or None (see the module
    docstring for the one shape that has one)."""
    if subprocess_specs or getattr(spec, "data_objects", None):
        return None
    specs = spec.task_specs
    start_task = specs.get("Start")
    if start_task is None or len(start_task.outputs) != 1:
        return None
    first = start_task.outputs[0]  # one start event, or the split before several
    if not (isinstance(first, StartEvent) or type(first) is StartEventSplit
            and all(isinstance(o, StartEvent) for o in first.outputs)):
        return None
    starts = [s for s in specs.values() if isinstance(s, StartEvent)
              and type(s.event_definition) is MessageEventDefinition
              and s.event_definition.name == message]
    if len(starts) != 1:
        return None
    [start] = starts
    if not _plain(start) or marshrut_info(start) or getattr(start.event_definition,
                                                            "correlation_properties", None):
        return None
    nexts = [o for o in start.outputs if getattr(o, "bpmn_id", None)]
    if len(nexts) != 1 or not isinstance(nexts[0], ExclusiveGateway):
        return None
    gateway = nexts[0]
    if not _plain(gateway) or gateway.default_task_spec is None:
        return None
    end = specs.get(gateway.default_task_spec)
    if not isinstance(end, EndEvent) or type(end.event_definition) is not NoneEventDefinition:
        return None
    if not _plain(end) or marshrut_info(end):
        return None
    flows = marshrut_info(gateway).get("flows") or {}
    if end.bpmn_id not in flows:
        return None
    conditions = []
    for condition, _target in gateway.cond_task_specs:
        if condition is None:
            continue  # never taken by the library either
        args = getattr(condition, "args", None)
        if not args or not isinstance(args[0], str):
            return None
        conditions.append(args[0])
    return StartFilter(start.bpmn_id, gateway.bpmn_id, end.bpmn_id, flows[end.bpmn_id],
                       tuple(conditions))
