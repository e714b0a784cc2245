"""Workflow persistence in two parts: the spec (once per definition) and the instance state.

SpiffWorkflow's serializer writes the process spec into every workflow; we cut it out and keep
it on the definition row, keyed by serializer version, and put it back when loading. Both
parts carry the serializer version; an older instance is reassembled with the spec of *its*
version and migrated by the library as one document, so library upgrades keep working.
"""
from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnWorkflowConverter,
    WorkflowConverter,
)

from .errors import EngineError
from .event_scopes import install
from .parser import serializer_config

#: A stored spec entry (``spec_to_dict`` output), or a function returning it.
SpecEntry = dict[str, Any] | Callable[[], dict[str, Any]]
#: Parsed specs kept per (definition, serializer version); a definition never changes.
SPEC_CACHE_SIZE = 256


class _StateConverter(BpmnWorkflowConverter):
    """The library's workflow converter, except that ``to_dict`` leaves out the spec and
    subprocess specs: the definition row holds them, so converting them on every save only
    to drop them again is wasted work. The keys and their order are the library's without
    those two; restoring is the library's own."""

    def to_dict(self, workflow: Any) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


def _json_copy(value: Any) -> Any:
    """A deep copy of JSON data (several times faster than ``copy.deepcopy``)."""
    return json.loads(json.dumps(value))


class WorkflowSerializer:
    """Converts specs and workflows to JSON-ready dicts and back (see module docstring).

    Specs are deserialized once per ``cache_key`` (callers pass one that identifies a
    definition version, e.g. ``(id, key, version)``) and shared by every workflow of that
    version: SpiffWorkflow never changes a spec while running a workflow.
    """

    def __init__(self) -> None:
        config = serializer_config()
        config[BpmnWorkflow] = _StateConverter
        registry = BpmnWorkflowSerializer.configure(config)
        self._serializer = BpmnWorkflowSerializer(registry)
        self.version: str = self._serializer.VERSION
        self._specs: OrderedDict[Hashable, tuple[Any, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def specs(self, spec_entry: SpecEntry, cache_key: Hashable | None = None
              ) -> tuple[Any, dict[str, Any]]:
        """The (process spec, subprocess specs) objects of a stored spec entry (or of a
        function returning it, called only when the specs are not cached)."""
        key = (cache_key, self.version) if cache_key is not None else None
        if key is not None:
            with self._lock:
                hit = self._specs.get(key)
                if hit is not None:
                    self._specs.move_to_end(key)
                    return hit
        if callable(spec_entry):
            spec_entry = spec_entry()
        entry = copy.deepcopy(spec_entry)  # restoring pops keys out of the dicts it is given
        spec = self._serializer.from_dict(entry["spec"])
        subs = {k: self._serializer.from_dict(v) for k, v in entry["subprocess_specs"].items()}
        if key is not None:
            with self._lock:
                self._specs[key] = (spec, subs)
                while len(self._specs) > SPEC_CACHE_SIZE:
                    self._specs.popitem(last=False)
        return spec, subs

    # ---------------------------------------------------------------- specs
    def spec_to_dict(self, spec: Any, subprocess_specs: dict[str, Any]) -> dict[str, Any]:
        return {
            "spec": self._serializer.to_dict(spec),
            "subprocess_specs": {k: self._serializer.to_dict(v)
                                 for k, v in subprocess_specs.items()},
        }

    def new_workflow(self, spec_entry: SpecEntry, script_engine: Any,
                     cache_key: Hashable | None = None) -> BpmnWorkflow:
        """A fresh workflow for a stored spec (``spec_to_dict`` output)."""
        spec, subs = self.specs(spec_entry, cache_key)
        return install(BpmnWorkflow(spec, dict(subs), script_engine=script_engine))

    # ------------------------------------------------------------ instances
    def state_to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        """The workflow without its spec (which the definition row holds)."""
        return self._serializer.to_dict(workflow)  # ``_StateConverter``: no spec in it

    def restore(self, spec_entry: SpecEntry, state: dict[str, Any], version: str,
                script_engine: Any, cache_key: Hashable | None = None) -> BpmnWorkflow:
        """Reassemble spec + state written with serializer ``version`` and load the workflow.

        ``spec_entry`` must have been written with the same ``version`` as ``state``. In the
        current version the cached spec objects are reused; an older state is migrated by
        the library as one document (spec included).
        """
        dct = _json_copy(state)
        if version == self.version:
            # The library's restore passes objects it has no converter for through as they
            # are: given the cached spec objects, it deserializes only the instance state.
            spec, subs = self.specs(spec_entry, cache_key)
            dct["spec"], dct["subprocess_specs"] = spec, dict(subs)
            workflow = self._serializer.from_dict(dct)
            workflow.script_engine = script_engine
            return install(workflow)
        if callable(spec_entry):
            spec_entry = spec_entry()
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
        return install(workflow)

    def migrated_spec(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        """The spec of a (migrated) workflow, to store under the current version."""
        return self.spec_to_dict(workflow.spec, workflow.subprocess_specs)
