"""Processes act in the CRM as labelled system actors; this module makes and reads those labels.

A service task calls the CRM as ``system_actor(ctx.label)`` where the label is
``"process <key> v<version>, instance <id>"`` (``engine.ports.ProcessContext.label``). The label
lands in every audit and outbox event the call writes, which is how the dispatcher recognises a
process's own writes (and does not let them re-trigger that process) and how a snapshot tells
who set a field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from crm_models.permissions import Actor, system_actor
from engine.ports import ProcessContext

_LABEL = re.compile(r"^process (?P<key>\S+) v(?P<version>\d+), instance (?P<instance>\d+)$")


@dataclass(frozen=True)
class ProcessLabel:
    key: str
    version: int
    instance_id: int


def process_actor(ctx: ProcessContext) -> Actor:
    """The actor a service task writes as: every right, and its process label for the audit."""
    return system_actor(ctx.label)


def parse_process_label(label: str | None) -> ProcessLabel | None:
    """The process behind an actor label, or None when a person (or the CLI …) acted."""
    m = _LABEL.match(label or "")
    if m is None:
        return None
    return ProcessLabel(m["key"], int(m["version"]), int(m["instance"]))
