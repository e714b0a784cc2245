"""Workflow persistence in two parts: the spec (once per definition) and the instance state.

SpiffWorkflow's serializer writes the process spec into every workflow; we cut it out and keep
it on the definition row, keyed by serializer version, and put it back when loading. Both
parts carry the serializer version; an older instance is reassembled with the spec of *its*
version and migrated by the library as one document, so library upgrades keep working.
"""
from __future__ import annotations

import copy
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer

from .errors import EngineError
from .parser import serializer_config

_SPEC_KEYS = ("spec", "subprocess_specs")


class WorkflowSerializer:
    """Converts specs and workflows to JSON-ready dicts and back (see module docstring)."""

    def __init__(self) -> None:
        registry = BpmnWorkflowSerializer.configure(serializer_config())
        self._serializer = BpmnWorkflowSerializer(registry)
        self.version: str = self._serializer.VERSION

    # ---------------------------------------------------------------- specs
    def spec_to_dict(self, spec: Any, subprocess_specs: dict[str, Any]) -> dict[str, Any]:
        return {
            "spec": self._serializer.to_dict(spec),
            "subprocess_specs": {k: self._serializer.to_dict(v)
                                 for k, v in subprocess_specs.items()},
        }

    def new_workflow(self, spec_entry: dict[str, Any], script_engine: Any) -> BpmnWorkflow:
        """A fresh workflow for a stored spec (``spec_to_dict`` output)."""
        entry = copy.deepcopy(spec_entry)  # restoring pops keys out of the dicts it is given
        spec = self._serializer.from_dict(entry["spec"])
        subs = {k: self._serializer.from_dict(v) for k, v in entry["subprocess_specs"].items()}
        return BpmnWorkflow(spec, subs, script_engine=script_engine)

    # ------------------------------------------------------------ instances
    def state_to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        """The workflow without its spec (which the definition row holds)."""
        dct = self._serializer.to_dict(workflow)
        for key in _SPEC_KEYS:
            dct.pop(key, None)
        return dct

    def restore(self, spec_entry: dict[str, Any], state: dict[str, Any], version: str,
                script_engine: Any) -> BpmnWorkflow:
        """Reassemble spec + state written with serializer ``version`` and load the workflow.

        ``spec_entry`` must have been written with the same ``version`` as ``state``.
        """
        dct = copy.deepcopy(state)
        dct.update(copy.deepcopy(spec_entry))
        if version != self.version:
            dct[BpmnWorkflowSerializer.VERSION_KEY] = version
            try:
                self._serializer.migrate(dct)
            except Exception as exc:
                raise EngineError(f"cannot migrate a workflow saved with serializer "
                                  f"{version}: {exc}") from exc
        workflow = self._serializer.from_dict(dct)
        workflow.script_engine = script_engine  # never serialized: attach after every load
        return workflow

    def migrated_spec(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        """The spec of a (migrated) workflow, to store under the current version."""
        return self.spec_to_dict(workflow.spec, workflow.subprocess_specs)
