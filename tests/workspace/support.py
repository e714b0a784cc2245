"""Helpers for the workspace tests: a small routing process with a user task and its form."""
from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

from sqlalchemy.orm import Session

from engine.runtime import Engine

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="Defs_{key}" '
        'targetNamespace="http://marshrut.dev/tests">\n')


def task_process(key: str = "ws_review", *, name: str = "Deal review",
                 message: str = "deal.created", assignment: str = "responsible",
                 assignee: str = "", due: str | None = None, away: str | None = None,
                 task: str = "Review the deal") -> str:
    """deal.created → user task (a required comment, an enum, and Approve/Reject buttons) → end.
    ``away``: the ``marshrut:outOfOffice`` rule (deputy or skip)."""
    attrs = f' marshrut:assignment="{assignment}"'
    if assignee:
        attrs += f" marshrut:assignee={quoteattr(assignee)}"
    if due:
        attrs += f' marshrut:due="{due}"'
    if away:
        attrs += f' marshrut:outOfOffice="{away}"'
    return (HEAD.format(key=key)
            + f'<bpmn:message id="Msg" name="{message}"/>\n'
            + f'<bpmn:process id="{key}" name={quoteattr(name)} isExecutable="true">\n'
            '<bpmn:startEvent id="Start_Event"><bpmn:messageEventDefinition messageRef="Msg"/>'
            '</bpmn:startEvent>\n'
            f'<bpmn:userTask id="Task_Review" name={quoteattr(task)}{attrs}>'
            '<bpmn:extensionElements>'
            '<marshrut:instructions>Check «{{deal.title}}» before it goes on.</marshrut:instructions>'
            '<marshrut:formField name="note" type="string" label="Note" required="true"/>'
            '<marshrut:formField name="score" type="integer" label="Score"/>'
            '<marshrut:formField name="decision" type="buttons" label="Decision">'
            '<marshrut:option value="approve" label="Approve"/>'
            '<marshrut:option value="reject" label="Reject"/>'
            '</marshrut:formField>'
            '</bpmn:extensionElements></bpmn:userTask>\n'
            '<bpmn:endEvent id="End_Event"/>\n'
            '<bpmn:sequenceFlow id="F1" sourceRef="Start_Event" targetRef="Task_Review"/>\n'
            '<bpmn:sequenceFlow id="F2" sourceRef="Task_Review" targetRef="End_Event"/>\n'
            '</bpmn:process>\n</bpmn:definitions>\n')


def deploy(db: Session, engine: Engine, xml: str) -> Any:
    definition = engine.deploy(db, xml)
    db.commit()
    return definition
