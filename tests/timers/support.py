"""Helpers for the app-level timer tests."""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine.store import ProcessInstance, Timer, TimerStatus

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="Defs_{key}" '
        'targetNamespace="http://marshrut.dev/tests">\n')


def wait_process(key: str, duration: str = "PT1S") -> str:
    """start → intermediate timer ``duration`` → script (fired_at) → end."""
    return (HEAD.format(key=key)
            + f'<bpmn:process id="{key}" isExecutable="true">'
            '<bpmn:startEvent id="Start_Event"/>'
            '<bpmn:intermediateCatchEvent id="Wait">'
            f'<bpmn:timerEventDefinition><bpmn:timeDuration>{duration}</bpmn:timeDuration>'
            '</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
            '<bpmn:scriptTask id="Done"><bpmn:script>done = True</bpmn:script></bpmn:scriptTask>'
            '<bpmn:endEvent id="End_Event"/>'
            '<bpmn:sequenceFlow id="F1" sourceRef="Start_Event" targetRef="Wait"/>'
            '<bpmn:sequenceFlow id="F2" sourceRef="Wait" targetRef="Done"/>'
            '<bpmn:sequenceFlow id="F3" sourceRef="Done" targetRef="End_Event"/>'
            '</bpmn:process></bpmn:definitions>')


def make_due(session: Session, *conditions: Any, at: dt.datetime | None = None) -> int:
    """Let time pass for the pending timers matching ``conditions``: they are due now."""
    at = at or dt.datetime.now(dt.UTC)
    n = session.execute(update(Timer).where(Timer.status == TimerStatus.PENDING, *conditions)
                        .values(due_at=at)).rowcount
    session.commit()
    return n


def wait_until(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.02) -> Any:
    """Poll ``check`` until it returns something truthy; AssertionError after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not reached within {timeout} s")
        time.sleep(every)


def clone_waiting(session: Session, instance_id: int, n: int) -> list[int]:
    """``n`` copies of a waiting instance and its pending timer, inserted in bulk (starting
    each one through the engine would make the setup, not the firing, the slow part)."""
    inst = session.get_one(ProcessInstance, instance_id)
    timer = session.scalars(select(Timer).where(Timer.instance_id == instance_id)).one()
    columns = ("definition_id", "status", "entity_type", "entity_id", "state",
               "serializer_version", "waiting", "started_by", "started_at",
               "incident_attempts")
    ids = list(session.scalars(insert(ProcessInstance).returning(ProcessInstance.id), [
        {c: getattr(inst, c) for c in columns} | {"version": 1} for _ in range(n)]))
    columns = ("kind", "definition_id", "element_id", "spiff_task_id", "expression", "due_at",
               "sequence", "status", "attempts", "created_at")
    session.execute(insert(Timer), [
        {c: getattr(timer, c) for c in columns} | {"instance_id": i} for i in ids])
    session.commit()
    return [instance_id, *ids]
