"""Thrown signals are broadcast (BPMN; Camunda does the same).

The library hands a thrown signal to the catches of the throwing instance only, and lets it
out of the instance (``workflow.get_events()``) only when nothing inside caught it. A
signal reaches *every* catch waiting for it, so the throw events of our processes use
:class:`BroadcastSignal`: caught inside as usual, and let out even then — the
``Correlator`` (``engine.correlation``) passes it on to the other running instances.
"""
from __future__ import annotations

import copy
from typing import Any

from SpiffWorkflow.bpmn.parser.event_parsers import EventDefinitionParser
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent


class BroadcastSignal(SignalEventDefinition):
    """The signal of a throw event (intermediate or end)."""

    def throw(self, my_task: Any) -> None:
        # catches compare definitions by class: throw a plain signal definition
        event = BpmnEvent(SignalEventDefinition(self.name), payload=copy.deepcopy(my_task.data))
        top = my_task.workflow.top_workflow
        if top.event_manager.catch(event):  # caught inside: the other instances get it too
            top.bpmn_events.append(event)


def parse_signal_throw(parser: Any, signal_event: Any) -> BroadcastSignal:
    """``parse_signal_event`` of the throw event parsers."""
    plain = EventDefinitionParser.parse_signal_event(parser, signal_event)
    return BroadcastSignal(plain.name, description=plain.description)
