"""SpiffWorkflow's script engine, routed through the sandbox.

SpiffWorkflow evaluates conditions, script tasks and DMN cells through
``workflow.script_engine`` (and a few places through ``script_engine.environment``), so
replacing both sends every user expression through :class:`engine.sandbox.Sandbox`. The script
engine is not serialized with a workflow; the engine attaches it after every load.
"""
from __future__ import annotations

from collections import ChainMap
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from .data import normalize_in_place
from .errors import EngineError, SandboxError
from .sandbox import Sandbox


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__({})
        self.sandbox = sandbox

    def evaluate(self, expression: str, context: dict[str, Any],
                 external_context: dict[str, Any] | None = None) -> Any:
        return self.sandbox.evaluate(expression, ChainMap(context, external_context or {}))

    def execute(self, script: str, context: dict[str, Any],
                external_context: dict[str, Any] | None = None) -> bool:
        scope = self.sandbox.execute(script, context, external_context)
        try:
            normalize_in_place(scope)
        except EngineError as exc:
            raise SandboxError(f"the script left a value task data cannot hold: {exc}") from None
        context.clear()
        context.update(scope)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise EngineError("service tasks are run by the engine, not the script environment")


class SandboxScriptEngine(PythonScriptEngine):
    """Evaluates through the sandbox and names the failing element on every ``SandboxError``."""

    def __init__(self, sandbox: Sandbox | None = None) -> None:
        self.sandbox = sandbox or Sandbox()
        super().__init__(environment=SandboxEnvironment(self.sandbox))

    def evaluate(self, task: Any, expression: str,
                 external_context: dict[str, Any] | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SandboxError as exc:
            raise locate(exc, task, expression) from None

    def execute(self, task: Any, script: str,
                external_context: dict[str, Any] | None = None) -> bool:
        try:
            return self.environment.execute(script, task.data, external_context)
        except SandboxError as exc:
            raise locate(exc, task, None) from None

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        raise EngineError("service tasks are run by the engine, not the script engine")


def locate(exc: SandboxError, task: Any, expression: str | None) -> SandboxError:
    """Fill in which element failed: the sequence flow for gateway conditions, else the task."""
    spec = task.task_spec
    ext = (getattr(spec, "extensions", None) or {}).get("marshrut", {})
    flows = [f for f, cond in ext.get("conditions", {}).items() if cond == expression]
    line = f" (line {exc.line})" if exc.line else ""
    if flows:
        exc.element_id = flows[0]
        exc.message = (f"the condition of flow {flows[0]} ({expression.strip()}) cannot be "
                       f"evaluated: {exc.message}")
    else:
        exc.element_id = getattr(spec, "bpmn_id", None) or spec.name
        what = f"expression '{expression.strip()}'" if expression else "script"
        exc.message = f"{what} of {exc.element_id} failed{line}: {exc.message}"
    exc.args = (exc.message,)
    return exc
