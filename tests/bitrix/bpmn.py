"""Small BPMN documents for the bizproc tests (ids avoid the engine's reserved ones)."""
from __future__ import annotations

from xml.sax.saxutils import quoteattr

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="Defs_{key}" '
        'targetNamespace="http://marshrut.dev/tests">\n')


def _start(message: str | None) -> tuple[str, str]:
    if not message:
        return "", '<bpmn:startEvent id="Go"/>\n'
    return (f'<bpmn:message id="Msg" name="{message}"/>\n',
            '<bpmn:startEvent id="Go"><bpmn:messageEventDefinition messageRef="Msg"/>'
            '</bpmn:startEvent>\n')


def review_process(key: str, *, message: str | None = None) -> str:
    """start → "Check" user task for the record's responsible (required 'outcome') → end."""
    msg, start = _start(message)
    return (HEAD.format(key=key) + msg
            + f'<bpmn:process id="{key}" name="Review" isExecutable="true">\n' + start
            + '<bpmn:userTask id="Check" name="Check" marshrut:assignment="responsible">'
            '<bpmn:extensionElements><marshrut:formField name="outcome" type="string" '
            'label="Outcome" required="true"/></bpmn:extensionElements></bpmn:userTask>\n'
            '<bpmn:endEvent id="Done"/>\n'
            '<bpmn:sequenceFlow id="F1" sourceRef="Go" targetRef="Check"/>\n'
            '<bpmn:sequenceFlow id="F2" sourceRef="Check" targetRef="Done"/>\n'
            '</bpmn:process>\n</bpmn:definitions>\n')


def webhook_process(key: str, params: dict[str, str], *, message: str = "deal.created",
                    expressions: dict[str, str] | None = None) -> str:
    """On ``message``: one ``webhook.call`` service task with ``params`` (literals) and
    ``expressions`` (evaluated on the task data) → end."""
    msg, start = _start(message)
    plist = "".join(f'<marshrut:parameter name="{n}" value={quoteattr(v)}/>'
                    for n, v in params.items())
    plist += "".join(f'<marshrut:parameter name="{n}" expression={quoteattr(v)}/>'
                     for n, v in (expressions or {}).items())
    return (HEAD.format(key=key) + msg
            + f'<bpmn:process id="{key}" isExecutable="true">\n' + start
            + '<bpmn:serviceTask id="Call" marshrut:operation="webhook.call">'
            f'<bpmn:extensionElements>{plist}</bpmn:extensionElements></bpmn:serviceTask>\n'
            '<bpmn:endEvent id="Done"/>\n'
            '<bpmn:sequenceFlow id="F1" sourceRef="Go" targetRef="Call"/>\n'
            '<bpmn:sequenceFlow id="F2" sourceRef="Call" targetRef="Done"/>\n'
            '</bpmn:process>\n</bpmn:definitions>\n')
