"""SpiffWorkflow parser and spec classes for Marshrut's BPMN, plus the matching serializer config.

Extension data read by :mod:`engine.extensions` is stored in each task spec's ``extensions``
dict under ``"marshrut"`` — the library's converters already serialize that dict, so the
standard spec classes can be used for user tasks, scripts and gateways. Two classes are ours:

* :class:`MarshrutServiceTask` is *manual*: ``do_engine_steps`` stops at it and the engine calls
  the registered operation itself (savepoint, retries, incidents), then runs the task.
* :class:`MarshrutBusinessRuleTask` evaluates a DMN table and keeps the data JSON.

Timer events (start, intermediate catch, boundary) get ``engine.timer_events``' definition,
which fires when the engine says so rather than by the library's wall clock.

Gateways record ``{"conditions": {flow_id: expression}, "flows": {target_id: flow_id}}`` so an
expression that fails names its sequence flow and the history can say which flow was taken.
"""
from __future__ import annotations

import copy
from typing import Any

from SpiffWorkflow.bpmn.parser import event_parsers as ep
from SpiffWorkflow.bpmn.parser.event_parsers import (
    EndEventParser,
    IntermediateThrowEventParser,
    ReceiveTaskParser,
    SendTaskParser,
)
from SpiffWorkflow.bpmn.parser.ProcessParser import ProcessParser
from SpiffWorkflow.bpmn.parser.task_parsers import (
    CallActivityParser,
    ConditionalGatewayParser,
    SubprocessParser,
    SubWorkflowParser,
)
from SpiffWorkflow.bpmn.parser.task_parsers import ScriptTaskParser as BpmnScriptTaskParser
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG
from SpiffWorkflow.bpmn.serializer.default.task_spec import (
    BpmnTaskSpecConverter,
    MultiInstanceTaskConverter,
    SubWorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.helpers import EventDefinitionConverter
from SpiffWorkflow.bpmn.specs.defaults import (
    BoundaryEvent,
    CallActivity,
    EndEvent,
    EventSubprocess,
    ExclusiveGateway,
    InclusiveGateway,
    IntermediateCatchEvent,
    IntermediateThrowEvent,
    ManualTask,
    NoneTask,
    ParallelMultiInstanceTask,
    ReceiveTask,
    ScriptTask,
    SendTask,
    SequentialMultiInstanceTask,
    StartEvent,
    SubWorkflowTask,
    UserTask,
)
from SpiffWorkflow.bpmn.specs.mixins.bpmn_spec_mixin import BpmnSpecMixin
from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser
from SpiffWorkflow.dmn.serializer.task_spec import BaseBusinessRuleTaskConverter
from SpiffWorkflow.dmn.specs.business_rule_task_mixin import BusinessRuleTaskMixin
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from . import extensions as ext
from .data import normalize_in_place
from .dmn import decide, table_info
from .signals import BroadcastSignal, parse_signal_throw
from .timer_events import (
    MarshrutTimerConverter,
    MarshrutTimerEvent,
    TimerBoundaryEventParser,
    TimerCatchEventParser,
    TimerStartEventParser,
    timers_of,
)


class MarshrutServiceTask(BpmnSpecMixin):
    """A service task: waits READY until the engine has called its operation."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = True  # so do_engine_steps leaves it to the engine


class MarshrutNoneTask(NoneTask):
    """A plain bpmn:task: a no-op step (the library's waits for someone, like a manual task)."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


class MarshrutBusinessRuleTask(BusinessRuleTaskMixin, BpmnSpecMixin):
    """A DMN decision; its outputs are merged into the data as JSON values."""

    def _run_hook(self, my_task: Any) -> bool:
        info = marshrut_info(self).get("dmn")
        if not info:  # deployed before hit policies were ours: the library's behaviour
            result = super()._run_hook(my_task)
            normalize_in_place(my_task.data)
            return result
        outputs = decide(self.dmnEngine, info, my_task)
        my_task.data = DeepMerge.merge(my_task.data, outputs)
        normalize_in_place(my_task.data)
        return True


class _ItemScoped:
    """Multi-instance whose item variables belong to one instance: the library merges a
    child's data (item included) back into the parent's, and then refuses to create the next
    child because the item "already exists" — so the item is cleared before each child."""

    input_item: Any
    output_item: Any

    def create_child(self, my_task: Any, item: Any, key_or_index: Any = None) -> None:
        for ref in (self.input_item, self.output_item):
            if ref is not None:
                my_task.data.pop(ref.bpmn_id, None)
        super().create_child(my_task, item, key_or_index)  # type: ignore[misc]


class MarshrutParallelMI(_ItemScoped, ParallelMultiInstanceTask):
    pass


class MarshrutSequentialMI(_ItemScoped, SequentialMultiInstanceTask):
    pass


class _Loops:
    """Our multi-instance classes; an item variable is named by its ``name`` (ids are unique
    per file, so two activities over the same list could not both call it ``product``)."""

    PARALLEL_MI_CLASS = MarshrutParallelMI
    SEQUENTIAL_MI_CLASS = MarshrutSequentialMI
    task: Any

    def _add_multiinstance_task(self, loop_characteristics: Any) -> None:
        super()._add_multiinstance_task(loop_characteristics)  # type: ignore[misc]
        for ref in (self.task.input_item, self.task.output_item):
            if ref is not None and (ref.bpmn_name or "").strip():
                ref.bpmn_id = ref.bpmn_name.strip()


class _MarshrutTaskParser(_Loops, TaskParser):
    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        el = self.node if node is None else node
        problems = ext.Problems()  # already reported by engine.validation before parsing
        if el.tag in (full_tag("userTask"), full_tag("manualTask")):
            return {"marshrut": ext.read_user_task(el, problems).to_dict()}
        if el.tag == full_tag("serviceTask"):
            return {"marshrut": ext.read_service_task(el, problems).to_dict()}
        return {"marshrut": {}}


class UserTaskParser(_MarshrutTaskParser):
    pass


class ServiceTaskParser(_MarshrutTaskParser):
    pass


class NoneTaskParser(_MarshrutTaskParser):
    pass


class ScriptTaskParser(_MarshrutTaskParser, BpmnScriptTaskParser):
    pass


class BusinessRuleTaskParser(_MarshrutTaskParser):
    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        ref = self.get_decision_ref(self.node)
        dmn_parser = self.process_parser.parser.dmn_parsers.get(ref)
        decision = None
        if dmn_parser is not None:
            decision = next((d for d in dmn_parser.node.iter()
                             if isinstance(d.tag, str) and d.tag.endswith("}decision")
                             and d.get("id") == ref), None)
        return {"marshrut": {"dmn": table_info(decision) if decision is not None else {}}}

    def create_task(self) -> Any:
        engine = self.process_parser.parser.get_engine(self.get_decision_ref(self.node), self.node)
        return self.spec_class(self.spec, self.bpmn_id, dmnEngine=engine, **self.bpmn_attributes)

    @staticmethod
    def get_decision_ref(node: Any) -> str | None:
        return ext.decision_ref(node)


class GatewayParser(ConditionalGatewayParser):
    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        return {"marshrut": {"conditions": {}, "flows": {}}}

    def connect_outgoing(self, outgoing_task: Any, sequence_flow_node: Any,
                         is_default: bool) -> None:
        info = self.task.extensions["marshrut"]
        flow_id = sequence_flow_node.get("id")
        info["flows"][sequence_flow_node.get("targetRef")] = flow_id
        condition = self.parse_condition(sequence_flow_node)
        if not is_default and condition is not None:
            info["conditions"][flow_id] = condition
        super().connect_outgoing(outgoing_task, sequence_flow_node, is_default)


class MarshrutEventSubprocess(EventSubprocess):
    """An event sub-process that starts from the process's current data (the library copies
    the data the process started with) and, when interrupting (the default of its start
    event's ``isInterrupting``), cancels everything else the process is doing."""

    def _update_hook(self, my_task: Any) -> Any:
        starting = my_task.workflow.top_workflow.subprocesses.get(my_task.id) is None
        if starting:  # taken before the rest is cancelled; ``copy_data`` hands it on
            my_task._marshrut_current = copy.deepcopy(_current_data(my_task))
        if starting and marshrut_info(self).get("interrupting", True):
            keep = {my_task.id}
            parent = my_task.parent
            while parent is not None:
                keep.add(parent.id)
                parent = parent.parent
            for task in my_task.workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK):
                if task.id not in keep and not isinstance(task.task_spec, EventSubprocess):
                    task.cancel()
        return super()._update_hook(my_task)

    def copy_data(self, my_task: Any, subworkflow: Any) -> None:
        # The library's update merges the data of the scope's start over this task's
        # (values changed since would be lost): the current data goes in here instead.
        current = my_task.__dict__.pop("_marshrut_current", None)
        if current is not None:
            my_task.data = current
        super().copy_data(my_task, subworkflow)

    def _on_complete_hook(self, my_task: Any) -> None:
        super()._on_complete_hook(my_task)
        if marshrut_info(self).get("interrupting", True):
            # the rest was cancelled when it started: the process (or the embedded
            # sub-process it is drawn in) ends with it (the library's end join would wait
            # for the cancelled branch)
            my_task.workflow._mark_complete(my_task)
        else:
            _share_changes(my_task)


def _share_changes(my_task: Any) -> None:
    """What a non-interrupting event sub-process wrote reaches the rest of its (sub-)process
    (each branch has its own copy of the data in the library, so it would be lost): the
    values it changed are put into the data of every task where the rest stands."""
    top = my_task.workflow.top_workflow
    sub = top.subprocesses.get(my_task.id)
    start = sub.get_next_task(spec_name="Start") if sub is not None else None
    before = start.data if start is not None else {}
    missing = object()
    changes = {k: v for k, v in my_task.data.items() if before.get(k, missing) != v}
    if changes:
        _merge_into(my_task.workflow, changes, skip=my_task)


def _merge_into(workflow: Any, changes: dict[str, Any], skip: Any) -> None:
    top = workflow.top_workflow
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING
                                   | TaskState.STARTED):
        if task is skip or not getattr(task.task_spec, "bpmn_id", None) \
                or isinstance(task.task_spec, EventSubprocess):
            continue
        if task.state == TaskState.WAITING and task.parent is not None:
            task.parent.data.update(copy.deepcopy(changes))  # a waiting task re-inherits
        task.data.update(copy.deepcopy(changes))
        inner = top.subprocesses.get(task.id) if task.state == TaskState.STARTED else None
        if inner is not None and not inner.completed:
            _merge_into(inner, changes, skip)


def _current_data(my_task: Any) -> dict[str, Any]:
    """The data where the rest of the process stands (the latest-changed unfinished task)."""
    tasks = [t for t in my_task.workflow.get_tasks(state=TaskState.READY | TaskState.WAITING
                                                   | TaskState.STARTED)
             if t is not my_task and getattr(t.task_spec, "bpmn_id", None)
             and not isinstance(t.task_spec, EventSubprocess)]
    if not tasks:
        return my_task.data
    return max(tasks, key=lambda t: t.last_state_change).data


class SubProcessParser(_Loops, SubWorkflowParser):
    def create_task(self) -> Any:
        if self.node.get("triggeredByEvent") != "true":
            return super().create_task()
        spec = SubprocessParser.get_subprocess_spec(self)
        return MarshrutEventSubprocess(self.spec, self.bpmn_id, subworkflow_spec=spec,
                                       **self.bpmn_attributes)

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        if self.node.get("triggeredByEvent") != "true":
            return {"marshrut": {}}
        start = self.node.find(full_tag("startEvent"))
        flag = (start.get("isInterrupting") if start is not None else None) or "true"
        return {"marshrut": {"interrupting": flag.strip().lower() != "false"}}


class CallParser(_Loops, CallActivityParser):
    pass


class SendParser(_Loops, SendTaskParser):
    pass


class ReceiveParser(_Loops, ReceiveTaskParser):
    pass


class StartParser(TimerStartEventParser):
    """Adds the error and escalation starts of event sub-processes (the library's start event
    parser reads only message, signal, timer and conditional definitions)."""

    def create_task(self) -> Any:
        event_definition = self.get_event_definition(
            [ep.MESSAGE_EVENT_XPATH, ep.SIGNAL_EVENT_XPATH, ep.TIMER_EVENT_XPATH,
             ep.CONDITIONAL_EVENT_XPATH, ep.ERROR_EVENT_XPATH, ep.ESCALATION_EVENT_XPATH])
        task = self._create_task(event_definition)
        self.spec.start.connect(task)
        return task


class EndParser(EndEventParser):
    """Adds signal end events (the library's end event parser skips them); signals thrown
    are broadcast (``engine.signals``)."""

    def parse_signal_event(self, signal_event: Any) -> Any:
        return parse_signal_throw(self, signal_event)

    def create_task(self) -> Any:
        event_definition = self.get_event_definition(
            [ep.MESSAGE_EVENT_XPATH, ep.CANCEL_EVENT_XPATH, ep.ERROR_EVENT_XPATH,
             ep.ESCALATION_EVENT_XPATH, ep.TERMINATION_EVENT_XPATH, ep.SIGNAL_EVENT_XPATH])
        task = self._create_task(event_definition)
        task.connect(self.spec.end)
        return task


class ThrowParser(IntermediateThrowEventParser):
    """Signals thrown are broadcast (``engine.signals``)."""

    def parse_signal_event(self, signal_event: Any) -> Any:
        return parse_signal_throw(self, signal_event)


class MarshrutProcessParser(ProcessParser):
    """Event sub-processes with a timer start are *triggered* when the timer fires, like
    those with a message or signal start (``engine.timer_scopes`` arms and fires the timer).
    The library would start them with their (sub-)process instead, waiting at the timer:
    the (sub-)process could not end before the timer fired, and an interrupting one would
    interrupt the moment it was created."""

    def add_tasks(self) -> None:
        super().add_tasks()
        start = self.spec.start
        for task_spec in [t for t in start.outputs if isinstance(t, EventSubprocess)]:
            sp_spec = self.parser.process_parsers[task_spec.spec].get_spec()
            if not any(timers_of(ts.event_definition) for ts in sp_spec.bpmn_start_events):
                continue
            # Nothing leads to it from the start; its own inputs and outputs stay (the
            # library checks that a task has an input, and the end waits for it).
            start.outputs = [t for t in start.outputs if t is not task_spec]
            self.spec.task_specs[sp_spec.name] = task_spec
            start.trigger_specs.append(sp_spec.name)


class MarshrutParser(BpmnDmnParser):
    PROCESS_PARSER_CLASS = MarshrutProcessParser
    OVERRIDE_PARSER_CLASSES = {
        full_tag("userTask"): (UserTaskParser, UserTask),
        full_tag("serviceTask"): (ServiceTaskParser, MarshrutServiceTask),
        full_tag("scriptTask"): (ScriptTaskParser, ScriptTask),
        full_tag("businessRuleTask"): (BusinessRuleTaskParser, MarshrutBusinessRuleTask),
        full_tag("exclusiveGateway"): (GatewayParser, ExclusiveGateway),
        full_tag("inclusiveGateway"): (GatewayParser, InclusiveGateway),
        full_tag("startEvent"): (StartParser, StartEvent),
        full_tag("intermediateCatchEvent"): (TimerCatchEventParser, IntermediateCatchEvent),
        full_tag("boundaryEvent"): (TimerBoundaryEventParser, BoundaryEvent),
        full_tag("manualTask"): (UserTaskParser, ManualTask),
        full_tag("task"): (NoneTaskParser, MarshrutNoneTask),
        full_tag("subProcess"): (SubProcessParser, SubWorkflowTask),
        full_tag("callActivity"): (CallParser, CallActivity),
        full_tag("intermediateThrowEvent"): (ThrowParser, IntermediateThrowEvent),
        full_tag("endEvent"): (EndParser, EndEvent),
        full_tag("sendTask"): (SendParser, SendTask),
        full_tag("receiveTask"): (ReceiveParser, ReceiveTask),
    }

    def __init__(self, *args: Any, default_timezone: str = "UTC", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_timezone = default_timezone  # for timers written without marshrut:timezone


def serializer_config() -> dict[type, type]:
    """The library's default converters plus ours, as a new dict (the library's is not touched)."""
    config = dict(DEFAULT_CONFIG)
    config[MarshrutServiceTask] = BpmnTaskSpecConverter
    config[MarshrutNoneTask] = BpmnTaskSpecConverter
    config[MarshrutEventSubprocess] = SubWorkflowConverter
    config[MarshrutParallelMI] = MultiInstanceTaskConverter
    config[MarshrutSequentialMI] = MultiInstanceTaskConverter
    config[MarshrutBusinessRuleTask] = BaseBusinessRuleTaskConverter
    config[MarshrutTimerEvent] = MarshrutTimerConverter
    config[BroadcastSignal] = EventDefinitionConverter
    return config


def marshrut_info(task_spec: Any) -> dict[str, Any]:
    """The ``marshrut`` extension dict of a task spec ({} for library-internal specs)."""
    return (getattr(task_spec, "extensions", None) or {}).get("marshrut", {})
