"""Deploy-time checks of timer events: each bad timer is refused naming its element."""
from __future__ import annotations

import pytest

from engine.errors import DefinitionInvalid

from .support import bpmn
from .test_deploy import errors_of, flow, process

TASK = '<bpmn:userTask id="Task" marshrut:assignment="responsible"/>'


def waiting(event: str) -> str:
    """start → Task (with ``event`` attached or following it) → end."""
    return ('<bpmn:startEvent id="S"/>' + TASK + event + '<bpmn:endEvent id="E"/>'
            '<bpmn:endEvent id="E2"/>' + flow("F1", "S", "Task") + flow("F2", "Task", "E"))


def timer(inner: str) -> str:
    return f"<bpmn:timerEventDefinition>{inner}</bpmn:timerEventDefinition>"


def boundary(definition: str, attrs: str = "", host: str = "Task") -> str:
    return (f'<bpmn:boundaryEvent id="B" attachedToRef="{host}" {attrs}>{definition}'
            f'</bpmn:boundaryEvent>' + flow("F3", "B", "E2"))


def start(definition: str, attrs: str = "", ext: str = "") -> str:
    body = (f'<bpmn:startEvent id="S" {attrs}>{ext}{definition}</bpmn:startEvent>'
            '<bpmn:endEvent id="E"/>' + flow("F1", "S", "E"))
    return body


def test_the_timer_fixtures_deploy_clean(engine, db):
    for name in ("timer_wait.bpmn", "timer_boundary.bpmn", "timer_gateway.bpmn",
                 "timer_schedule.bpmn"):
        assert engine.validate(bpmn(name), session=db) == [], name


@pytest.mark.parametrize("body,message", [
    (waiting(boundary(timer("<bpmn:timeDuration>2 hours</bpmn:timeDuration>"))),
     "timeDuration: '2 hours' is not an ISO 8601 duration such as PT2H or P1D"),
    (waiting(boundary(timer(""))),
     "the timer needs exactly one of timeDuration, timeDate or timeCycle"),
    (waiting(boundary(timer("<bpmn:timeDuration>PT1H</bpmn:timeDuration>"
                            "<bpmn:timeDate>2026-03-02</bpmn:timeDate>"))),
     "more than one of timeDuration, timeDate, timeCycle"),
    (waiting(boundary(timer("<bpmn:timeDuration></bpmn:timeDuration>"))),
     "the timer's timeDuration is empty"),
    (waiting(boundary(timer("<bpmn:timeCycle>R/PT1H</bpmn:timeCycle>"))),
     "boundary timer B interrupts its activity, so it fires once"),
    (waiting(boundary(timer("<bpmn:timeDate>soon</bpmn:timeDate>"))),
     "timeDate: 'soon' is not an ISO 8601 date-time"),
    (waiting(boundary(timer("<bpmn:timeDuration>PT1H</bpmn:timeDuration>"),
                      'marshrut:timezone="Moscow"')), "marshrut:timezone: unknown time zone"),
    (waiting(boundary(timer("<bpmn:timeDate>2026-03-02T10:00</bpmn:timeDate>"),
                      'marshrut:businessHours="true"')),
     "marshrut:businessHours applies to a timeDuration only"),
    (waiting(boundary(timer("<bpmn:timeDuration>PT1H</bpmn:timeDuration>"),
                      'marshrut:businessHours="yes"')),
     "marshrut:businessHours must be true or false"),
    (waiting(boundary(timer("<bpmn:timeDuration>PT1H</bpmn:timeDuration>"),
                      'cancelActivity="maybe"')), "cancelActivity of B must be true or false"),
    (waiting(boundary(timer("<bpmn:timeDuration>PT1H</bpmn:timeDuration>"), host="E")),
     "boundary timer events are supported on bpmn:callActivity, bpmn:manualTask, "
     "bpmn:receiveTask, bpmn:subProcess, bpmn:userTask"),
    (waiting(boundary(timer("<bpmn:timeDuration>PT1H</bpmn:timeDuration>"), host="Nope")),
     "attached to no element of the process"),
    (waiting('<bpmn:boundaryEvent id="B" attachedToRef="Task"/>' + flow("F3", "B", "E2")),
     "boundary event B needs an event definition"),
    (waiting(boundary('<bpmn:messageEventDefinition messageRef="M"/>')),
     "the message event B refers to no bpmn:message"),
    (waiting(boundary('<bpmn:compensateEventDefinition/>')), "compensation is not supported"),
    (start(timer("<bpmn:timeDuration>PT1H</bpmn:timeDuration>")),
     "a timer start event needs a timeCycle"),
    (start(timer("<bpmn:timeCycle>0 25 * * *</bpmn:timeCycle>")), "cron '0 25 * * *'"),
    (start(timer("<bpmn:timeCycle>R/2026-01-05T09:00/P1Q</bpmn:timeCycle>")),
     "'P1Q' is not an ISO 8601 duration"),
    (start(timer("<bpmn:timeCycle>0 9 * * 1-5</bpmn:timeCycle>"),
           ext='<bpmn:extensionElements><marshrut:select entity="deal" idleDays="soon"/>'
               '</bpmn:extensionElements>'), "idleDays must be a whole number of days"),
    (start(timer("<bpmn:timeCycle>0 9 * * 1-5</bpmn:timeCycle>"),
           ext='<bpmn:extensionElements><marshrut:select entity="deal"/>'
               '</bpmn:extensionElements>'),
     "marshrut:select: entity selection needs the CRM bridge"),
    (start("", ext='<bpmn:extensionElements><marshrut:select entity="deal"/>'
                   '</bpmn:extensionElements>'),
     "marshrut:select belongs on a timer start event"),
])
def test_each_bad_timer_names_its_element(engine, db, body, message):
    errors = errors_of(engine, db, process(body))
    element = "S" if "startEvent" in body and "boundaryEvent" not in body else "B"
    assert any(eid == element and message in msg for eid, msg in errors), errors


def test_problems_carry_the_line(engine, db):
    xml = process(waiting(boundary(timer("<bpmn:timeDuration>PT1X</bpmn:timeDuration>"))))
    xml = xml.replace("<bpmn:boundaryEvent", "\n\n<bpmn:boundaryEvent")
    with pytest.raises(DefinitionInvalid) as info:
        engine.deploy(db, xml)
    [error] = info.value.errors
    assert (error.element_id, error.line) == ("B", 4)


def test_quoted_expressions_as_spiff_writes_them_are_accepted(engine, db):
    body = waiting(boundary(timer('<bpmn:timeDuration>"PT2H"</bpmn:timeDuration>')))
    assert engine.validate(process(body), session=db) == []


def test_the_selector_validates_the_selection(engine, db):
    class Selector:
        def validate(self, session, spec):
            return f"unknown entity '{spec.entity}'" if spec.entity != "deal" else None

        def select(self, session, spec, now):
            return []

    engine.compiler.selector = Selector()
    body = start(timer("<bpmn:timeCycle>0 9 * * 1-5</bpmn:timeCycle>"),
                 ext='<bpmn:extensionElements><marshrut:select entity="ship"/>'
                     '</bpmn:extensionElements>')
    assert errors_of(engine, db, process(body)) == [
        ("S", "marshrut:select: unknown entity 'ship'")]
