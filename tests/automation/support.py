"""Helpers for the bridge tests: small BPMN documents, API clients with tokens, lookups."""
from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.org import User
from crm_models.services.org import create_token
from engine.store import ProcessDefinition, ProcessInstance, ProcessTask

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:marshrut="http://marshrut.dev/schema/bpmn/1.0" id="Defs_{key}" '
        'targetNamespace="http://marshrut.dev/tests">\n')


def service_process(key: str, *, message: str | None = "deal.created", priority: int = 100,
                    operation: str = "crm.add_comment", params: dict[str, str] | None = None,
                    condition: str | None = None, user_task: str | None = None) -> str:
    """start (message or none) → [gateway: condition, else end] → service task → [user task
    assigned by ``user_task`` kind, e.g. "responsible"] → end."""
    params = params if params is not None else {"text": "hello"}
    out = [HEAD.format(key=key)]
    if message:
        out.append(f'<bpmn:message id="Msg" name="{message}"/>\n')
    out.append(f'<bpmn:process id="{key}" isExecutable="true" marshrut:priority="{priority}">\n')
    start_def = '<bpmn:messageEventDefinition messageRef="Msg"/>' if message else ""
    out.append(f'<bpmn:startEvent id="Start_Event">{start_def}</bpmn:startEvent>\n')
    first = "Task_Service"
    if condition is not None:
        first = "Gateway"
        out.append('<bpmn:exclusiveGateway id="Gateway" default="Flow_Else"/>\n'
                   '<bpmn:endEvent id="End_Else"/>\n'
                   '<bpmn:sequenceFlow id="Flow_If" sourceRef="Gateway" targetRef="Task_Service">'
                   f'<bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression>'
                   '</bpmn:sequenceFlow>\n'
                   '<bpmn:sequenceFlow id="Flow_Else" sourceRef="Gateway" targetRef="End_Else"/>\n')
    plist = "".join(f'<marshrut:parameter name="{n}" value={quoteattr(v)}/>'
                    for n, v in params.items())
    out.append(f'<bpmn:serviceTask id="Task_Service" marshrut:operation="{operation}">'
               f'<bpmn:extensionElements>{plist}</bpmn:extensionElements></bpmn:serviceTask>\n')
    after = "End_Event"
    if user_task:
        after = "Task_User"
        out.append(f'<bpmn:userTask id="Task_User" name="Follow up" '
                   f'marshrut:assignment="{user_task}"/>\n'
                   '<bpmn:sequenceFlow id="Flow_UserEnd" sourceRef="Task_User" targetRef="End_Event"/>\n')
    out.append('<bpmn:endEvent id="End_Event"/>\n'
               f'<bpmn:sequenceFlow id="Flow_Start" sourceRef="Start_Event" targetRef="{first}"/>\n'
               f'<bpmn:sequenceFlow id="Flow_Done" sourceRef="Task_Service" targetRef="{after}"/>\n'
               '</bpmn:process>\n</bpmn:definitions>\n')
    return "".join(out)


def user_task_process(key: str, *, assignment: str = "responsible", assignee: str = "",
                      message: str | None = None) -> str:
    """start → user task (with a required 'outcome' field) → end."""
    out = [HEAD.format(key=key)]
    if message:
        out.append(f'<bpmn:message id="Msg" name="{message}"/>\n')
    start_def = '<bpmn:messageEventDefinition messageRef="Msg"/>' if message else ""
    target = f' marshrut:assignee={quoteattr(assignee)}' if assignee else ""
    out.append(f'<bpmn:process id="{key}" isExecutable="true">\n'
               f'<bpmn:startEvent id="Start_Event">{start_def}</bpmn:startEvent>\n'
               f'<bpmn:userTask id="Task_User" name="Check" marshrut:assignment="{assignment}"'
               f'{target}><bpmn:extensionElements>'
               '<marshrut:formField name="outcome" type="string" label="Outcome" required="true"/>'
               '</bpmn:extensionElements></bpmn:userTask>\n'
               '<bpmn:endEvent id="End_Event"/>\n'
               '<bpmn:sequenceFlow id="F1" sourceRef="Start_Event" targetRef="Task_User"/>\n'
               '<bpmn:sequenceFlow id="F2" sourceRef="Task_User" targetRef="End_Event"/>\n'
               '</bpmn:process>\n</bpmn:definitions>\n')
    return "".join(out)


class Api:
    """A test client sending ``Authorization: Bearer <token>``."""

    def __init__(self, client: Any, token: str) -> None:
        self.client, self.token = client, token

    def call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        if json is not None:
            kw["json"] = json
        return self.call("POST", path, **kw)


def api_as(app: Any, db: Session, email: str) -> Api:
    user = user_by_email(db, email)
    token = create_token(db, user, "tests")
    db.commit()
    return Api(app.test_client(), token)


def user_by_email(db: Session, email: str) -> User:
    return db.scalars(select(User).where(func.lower(User.email) == email.lower())).one()


def instances_of(db: Session, key: str, **where: Any) -> list[ProcessInstance]:
    db.rollback()  # see what other sessions committed…
    db.expire_all()  # … even when no transaction was open (then rollback expires nothing)
    q = (select(ProcessInstance).join(ProcessDefinition,
                                      ProcessDefinition.id == ProcessInstance.definition_id)
         .where(ProcessDefinition.key == key).order_by(ProcessInstance.id))
    for name, value in where.items():
        q = q.where(getattr(ProcessInstance, name) == value)
    return list(db.scalars(q))


def tasks_of(db: Session, **where: Any) -> list[ProcessTask]:
    db.rollback()
    db.expire_all()
    q = select(ProcessTask).order_by(ProcessTask.id)
    for name, value in where.items():
        q = q.where(getattr(ProcessTask, name) == value)
    return list(db.scalars(q))
