"""Test data factories: ``make_user``, ``make_deal`` … and the standard org chart."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_models.org import Role, User
from crm_models.permissions import Actor, actor_for, system_actor
from crm_models.services import create_company, create_contact, create_deal, create_lead
from crm_models.services.org import create_user, grant_role, save_department

PASSWORD = "demo"
_seq = itertools.count(1)
SYSTEM = system_actor("tests")


def role(session: Session, code: str) -> Role:
    r = session.scalars(select(Role).where(Role.code == code)).first()
    assert r is not None, code
    return r


def make_user(session: Session, *, role_code: str | None = "manager",
              department_id: int | None = None, email: str | None = None,
              full_name: str | None = None, **kw: Any) -> User:
    n = next(_seq)
    user = create_user(session, SYSTEM, email=email or f"user{n}@test.local",
                       full_name=full_name or f"User {n}", password=PASSWORD,
                       department_id=department_id, **kw)
    if role_code:
        grant_role(session, SYSTEM, role(session, role_code).id, user_id=user.id)
    return user


def actor(session: Session, user: User) -> Actor:
    return actor_for(session, user)


def make_deal(session: Session, responsible: User, **kw: Any) -> Any:
    kw.setdefault("title", f"Deal {next(_seq)}")
    return create_deal(session, SYSTEM, responsible_id=responsible.id, **kw)


def make_lead(session: Session, responsible: User, **kw: Any) -> Any:
    kw.setdefault("title", f"Lead {next(_seq)}")
    return create_lead(session, SYSTEM, responsible_id=responsible.id, **kw)


def make_contact(session: Session, responsible: User, **kw: Any) -> Any:
    kw.setdefault("last_name", f"Contact{next(_seq)}")
    return create_contact(session, SYSTEM, responsible_id=responsible.id, **kw)


def make_company(session: Session, responsible: User, **kw: Any) -> Any:
    kw.setdefault("title", f"Company {next(_seq)}")
    return create_company(session, SYSTEM, responsible_id=responsible.id, **kw)


@dataclass
class Org:
    admin: User
    head: User  # head of Sales, role sales_head
    corporate: User  # manager in Corporate (a sub-department of Sales)
    m1: User  # manager in Sales
    m2: User  # manager in Sales
    outsider: User  # manager in Support (another department)
    observer: User
    sales_id: int
    corporate_id: int
    support_id: int


def make_org(session: Session) -> Org:
    sales = save_department(session, SYSTEM, name="Sales")
    corp = save_department(session, SYSTEM, name="Corporate", parent_id=sales.id)
    support = save_department(session, SYSTEM, name="Support")
    admin = make_user(session, role_code="admin", email="admin@test.local", full_name="Admin")
    head = make_user(session, role_code="sales_head", department_id=sales.id,
                     email="head@test.local", full_name="Head of Sales")
    corporate = make_user(session, department_id=corp.id, email="corporate@test.local",
                          full_name="Corporate Manager")
    m1 = make_user(session, department_id=sales.id, email="m1@test.local", full_name="Manager One")
    m2 = make_user(session, department_id=sales.id, email="m2@test.local", full_name="Manager Two")
    outsider = make_user(session, department_id=support.id, email="out@test.local",
                         full_name="Outsider")
    observer = make_user(session, role_code="observer", email="observer@test.local",
                         full_name="Observer")
    save_department(session, SYSTEM, sales.id, head_id=head.id)
    save_department(session, SYSTEM, corp.id, head_id=corporate.id)
    return Org(admin, head, corporate, m1, m2, outsider, observer, sales.id, corp.id, support.id)


def make_inbox_tasks(session: Session, specs: list[dict[str, Any]]) -> list[Any]:
    """Task rows written straight into ``process_task`` (and ``process_task_candidate``), for
    lists that need many tasks in a chosen order; one placeholder instance holds them all.
    Each spec gives ``priority``, ``due_at`` (aware or None), ``status`` and the assignee,
    ``candidate_ids`` or ``claimed_by``; the rest is filled in."""
    import datetime as dt

    from engine.store import ProcessDefinition, ProcessInstance, ProcessTask
    from engine.tasks import candidate_rows

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    d = session.scalar(select(ProcessDefinition).where(ProcessDefinition.key == "inbox_fill"))
    if d is None:
        d = ProcessDefinition(key="inbox_fill", version=1, name="Inbox fill", bpmn_xml="<x/>",
                              dmn_xml=[], specs={}, triggers=[], manual_start=False,
                              variables={}, schedules=[], active=False, deployed_at=now)
        session.add(d)
        session.flush()
    inst = ProcessInstance(definition_id=d.id, status="waiting", serializer_version="1",
                           version=1, waiting=[], started_at=now)
    session.add(inst)
    session.flush()
    rows = []
    for n, spec in enumerate(specs):
        fields: dict[str, Any] = {
            "element_id": "Task_call", "name": f"Task {n}", "instructions": "", "form": [],
            "assignee_id": None, "candidate_ids": [], "claimed_by": None,
            "assignment_note": "", "status": "open", "priority": 2, "due_at": None,
            "created_at": now, "definition_key": "inbox_fill", **spec}
        row = ProcessTask(instance_id=inst.id, spiff_task_id=f"{inst.id:08d}-fill-{n:012d}",
                          candidate_rows=candidate_rows(fields["candidate_ids"]), **fields)
        session.add(row)
        rows.append(row)
    session.flush()
    return rows
