"""History notes for loops: which instance of a multi-instance activity (or which iteration
of a standard loop) just finished, so the viewer can draw "2/3" without loading the workflow.

``note(task)`` is called for every completed task with a BPMN id; it costs one isinstance
check unless the task is a loop's child.
"""
from __future__ import annotations

import re
from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import (
    MultiInstanceTask,
    StandardLoopTask,
)

#: ``instance 2 of 3`` / ``iteration 4``: parsed back by ``automation.process_trace``
PATTERN = re.compile(r"\b(?:instance (\d+) of (\d+)|iteration (\d+))\b")


def note(task: Any) -> str:
    """"instance i of n" for a multi-instance child, "iteration i" for a loop's; else "".
    Call it after the task ran (the loop has counted it then)."""
    parent = task.parent
    spec = parent.task_spec if parent is not None else None
    if getattr(spec, "task_spec", None) != task.task_spec.name:
        return ""  # not a loop's instance (e.g. the element after a loop)
    if isinstance(spec, MultiInstanceTask):
        done = len(parent.internal_data.get("merged", []))
        total = _total(spec, parent)
        return f"instance {done} of {total}" if total is not None else f"instance {done}"
    if isinstance(spec, StandardLoopTask):
        return f"iteration {len(parent.internal_data.get('merged', []))}"
    return ""


def _total(spec: Any, parent: Any) -> int | None:
    cardinality = parent.internal_data.get("cardinality")
    if isinstance(cardinality, int):
        return cardinality
    if spec.data_input is not None:
        items = spec.data_input.get(parent)
        try:
            return len(items)
        except TypeError:
            return None
    kids = [c for c in parent.children if c.task_spec.name == spec.task_spec]
    return len(kids) or None
