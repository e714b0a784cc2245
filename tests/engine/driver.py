"""A database-free driver of the test processes, for save/restore and frozen-fixture tests.

It uses the engine's own parser, sandboxed script engine and serializer, and plays a scenario
of actions: complete a user task with data, deliver a message, fire a timer (as the
scheduler does once it is due); service tasks are answered
with a fixed result. With ``reload=True`` the workflow is serialized to JSON text and loaded
back (spec and state apart, as the engine stores them) at every wait state.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.specs.defaults import ManualTask, UserTask
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine import timer_events
from engine.calendar import BusinessCalendar
from engine.executor import start_on
from engine.parser import MarshrutServiceTask
from engine.ports import ParamSpec
from engine.sandbox import Sandbox
from engine.scripting import SandboxScriptEngine
from engine.serialization import WorkflowSerializer
from engine.services import ServiceRegistry
from engine.timers import due_of
from engine.validation import Compiler

from .support import FakeOperation, assign_op, bpmn

SERIALIZER = WorkflowSerializer()
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # the drivers' clock: a Monday, 12:00 MSK
CALENDAR = BusinessCalendar()
SERVICE_RESULT = {"crm_ok": True}


def compile_spec(name: str, dmn: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored spec of a test process and its process variables."""
    registry = ServiceRegistry()
    registry.register(assign_op())
    registry.register(FakeOperation("test.flaky", (ParamSpec("amount", "decimal"),)))
    compiled, errors = Compiler(registry, Sandbox(), None).compile(
        bpmn(name), tuple(bpmn(d) for d in dmn))
    assert compiled is not None, errors
    return (SERIALIZER.spec_to_dict(compiled.spec, compiled.subprocess_specs),
            compiled.variables)


class Driver:
    def __init__(self, spec: dict[str, Any], *, reload: bool,
                 variables: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.variables = variables or {}
        self.reload = reload
        self.path: list[str] = []
        self.reloads = 0
        self.wf: Any = None

    def start(self, data: dict[str, Any], message: str | None) -> Driver:
        self.wf = SERIALIZER.new_workflow(self.spec, SandboxScriptEngine())
        self.wf.task_tree.data.update(data | self.variables)
        start_on(self.wf, message)
        return self

    def load(self, state: dict[str, Any], version: str) -> Driver:
        self.wf = SERIALIZER.restore(self.spec, state, version, SandboxScriptEngine())
        return self

    def settle(self) -> None:
        """Engine steps and service calls until the workflow waits (timers get their due
        time, as the engine arms them, at ``NOW``); then maybe reload."""
        while True:
            self.wf.refresh_timers()
            self.wf.do_engine_steps(did_complete_task=self._seen)
            services = [t for t in self.wf.get_tasks(state=TaskState.READY, manual=True)
                        if isinstance(t.task_spec, MarshrutServiceTask)]
            if not services:
                if timer_events.arm(self.wf, NOW, lambda s: due_of(s, NOW, CALENDAR)):
                    continue
                break
            for task in services:
                task.data.update(SERVICE_RESULT)
                task.run()
                self._seen(task)
        if self.reload and not self.wf.completed:
            text = json.dumps(SERIALIZER.state_to_dict(self.wf))
            self.wf = SERIALIZER.restore(self.spec, json.loads(text), SERIALIZER.version,
                                         SandboxScriptEngine())
            self.reloads += 1

    def _seen(self, task: Any) -> None:
        element = getattr(task.task_spec, "bpmn_id", None)
        if element:
            self.path.append(element)

    def act(self, action: list[Any]) -> None:
        kind, target, data = action
        if kind == "complete":
            [task] = [t for t in self.wf.get_tasks(state=TaskState.READY, manual=True)
                      if isinstance(t.task_spec, UserTask | ManualTask)
                      and t.task_spec.bpmn_id == target]
            task.set_data(**data)
            task.run()
            self._seen(task)
        elif kind == "message":
            self.wf.catch(BpmnEvent(MessageEventDefinition(target), data))
        elif kind == "timer":  # the scheduler found the timer ``target`` due
            [task] = [t for t in self.wf.event_manager.tasks.values()
                      if timer_events.timer_state(t, target)]
            assert timer_events.mark_fired(task, target)
            self._seen(task)
        else:
            raise ValueError(kind)

    def play(self, actions: list[list[Any]]) -> dict[str, Any]:
        self.settle()
        for action in actions:
            self.act(action)
            self.settle()
        assert self.wf.completed, f"not finished after {actions}"
        return dict(self.wf.data)
