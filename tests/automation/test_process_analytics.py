"""Process analytics on fixed engine rows: each figure equals the hand calculation in the
fixture's docstring; each user sees the instances of the records he may read."""
from __future__ import annotations

import datetime as dt

import pytest

from automation.process_analytics import process_report
from crm_models.activity import Activity
from crm_models.services import reports as rep
from engine.store import (
    ProcessDefinition,
    ProcessHistory,
    ProcessInstance,
    ProcessTask,
    Timer,
    TimerKind,
)
from tests.factories import actor, make_deal

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
T0 = NOW - dt.timedelta(days=2)
MIN = dt.timedelta(minutes=1)


def _definition(db, key, version):
    d = ProcessDefinition(key=key, version=version, name=key.title(), bpmn_xml="<x/>",
                          dmn_xml=[], specs={}, triggers=[], manual_start=False, variables={},
                          schedules=[], active=version == 1, deployed_at=T0 - 10 * MIN)
    db.add(d)
    db.flush()
    return d


def _instance(db, d, status, entity=None, started=T0):
    i = ProcessInstance(definition_id=d.id, status=status, entity_type=entity and "deal",
                        entity_id=entity.id if entity else None, serializer_version="1",
                        version=1, waiting=[], started_at=started)
    db.add(i)
    db.flush()
    return i


def _history(db, inst, *events):
    for minutes, event, element in events:
        db.add(ProcessHistory(instance_id=inst.id, at=T0 + minutes * MIN, event=event,
                              element_id=element, message=""))


def _task(db, inst, n, user, due_min, status, done_min=None):
    db.add(ProcessTask(instance_id=inst.id, spiff_task_id=f"00000000-0000-0000-0000-{n:012}",
                       element_id="Task_call", name="Call", instructions="", form=[],
                       assignee_id=user.id, candidate_ids=[], assignment_note="",
                       status=status, priority=2, due_at=T0 + due_min * MIN, created_at=T0,
                       completed_at=T0 + done_min * MIN if done_min is not None else None,
                       completed_by=user.id if done_min is not None else None,
                       definition_key="routing", entity_type=inst.entity_type,
                       entity_id=inst.entity_id))


def _timer(db, inst, status):
    db.add(Timer(kind=TimerKind.BOUNDARY, definition_id=inst.definition_id,
                 element_id="Sla", instance_id=inst.id, expression="PT1H", due_at=T0 + 60 * MIN,
                 status=status, created_at=T0))


def _activity(db, deal, user, minutes, kind="call"):
    db.add(Activity(type=kind, subject="x", responsible_id=user.id, entity_type="deal",
                    entity_id=deal.id, created_at=T0 + minutes * MIN))


@pytest.fixture()
def fixed(db, org):
    """D1 routing v1, D2 routing v2, D3 other v1 (no record).
    I1 D1 deal1(m1) completed: assigned +10, waiting Task_call +10, left Task_call +70
       (60 min), left End +70; task due +120 done +70 by m1; SLA timer cancelled; call +40
       (30 min after routing; a call at -60 is before routing).
    I2 D1 deal2(m2) waiting: assigned +0; task due +60 open (overdue now); SLA timer fired;
       e-mail +180 (3 h).
    I3 D2 deal3(outsider) incident at +5.  I4 D1 deal1 started 100 days ago (outside).
    I5 D3 no record, completed.
    By hand: D1: 2 instances, 1 completed, first contact (0.5 h + 3 h) / 2 = 1.75 h, SLA 2
    armed / 1 breached = 50 %, tasks 1 done / 1 overdue. D2: 1 instance, 1 incident."""
    d1, d2, d3 = (_definition(db, "routing", 1), _definition(db, "routing", 2),
                  _definition(db, "other", 1))
    deal1, deal2, deal3 = (make_deal(db, org.m1), make_deal(db, org.m2),
                           make_deal(db, org.outsider))
    i1 = _instance(db, d1, "completed", deal1)
    _history(db, i1, (0, "started", None), (10, "assigned", "Task_call"),
             (10, "waiting", "Task_call"), (70, "completed", "Task_call"),
             (70, "left", "Task_call"), (70, "left", "End"), (70, "finished", None))
    _task(db, i1, 1, org.m1, 120, "completed", 70)
    _timer(db, i1, "cancelled")
    _activity(db, deal1, org.m1, -60)
    _activity(db, deal1, org.m1, 40)
    i2 = _instance(db, d1, "waiting", deal2)
    _history(db, i2, (0, "started", None), (0, "assigned", "Task_call"),
             (0, "waiting", "Task_call"), (60, "timer_fired", "Sla"))
    _task(db, i2, 2, org.m2, 60, "open")
    _timer(db, i2, "fired")
    _activity(db, deal2, org.m2, 180, "email")
    i3 = _instance(db, d2, "incident", deal3)
    _history(db, i3, (0, "started", None), (5, "incident", "Svc"))
    _instance(db, d1, "completed", deal1, started=NOW - dt.timedelta(days=100))
    _instance(db, d3, "completed", None)
    db.commit()
    return {"d1": d1.id, "d2": d2.id, "d3": d3.id}


def period(**kw):
    today = NOW.date()
    return rep.ReportFilter(today - dt.timedelta(days=30), today + dt.timedelta(days=1), **kw)


def figures(rows):
    return {f.label: (f.instances, f.completed, f.incidents, f.first_contact_hours,
                      f.sla_armed, f.sla_breached, f.sla_breach_rate, f.tasks_done,
                      f.tasks_overdue) for f in rows}


def test_by_version_manager_department(db, org, fixed):
    from crm_models.permissions import system_actor

    r = process_report(db, system_actor("t"), period(), now=NOW)
    assert figures(r.by_version) == {
        "Routing v1": (2, 1, 0, 1.75, 2, 1, 50.0, 1, 1),
        "Routing v2": (1, 0, 1, None, 0, 0, None, 0, 0),
        "Other v1": (1, 1, 0, None, 0, 0, None, 0, 0)}
    assert figures([r.total]) == {"": (4, 2, 1, 1.75, 2, 1, 50.0, 1, 1)}
    assert figures(r.by_manager) == {
        "Manager One": (1, 1, 0, 0.5, 1, 0, 0.0, 1, 0),
        "Manager Two": (1, 0, 0, 3.0, 1, 1, 100.0, 0, 1),
        "Outsider": (1, 0, 1, None, 0, 0, None, 0, 0),
        "": (1, 1, 0, None, 0, 0, None, 0, 0)}
    assert figures(r.by_department) == {
        "Sales": (2, 1, 0, 1.75, 2, 1, 50.0, 1, 1),
        "Support": (1, 0, 1, None, 0, 0, None, 0, 0),
        "": (1, 1, 0, None, 0, 0, None, 0, 0)}
    assert r.elements == []  # only for one version


def test_filters_and_time_per_element(db, org, fixed):
    from crm_models.permissions import system_actor

    sys = system_actor("t")
    r = process_report(db, sys, period(), definition_id=fixed["d1"], now=NOW)
    assert [(e.element_id, e.passes, e.average_seconds) for e in r.elements] == [
        ("Task_call", 1, 3600.0), ("End", 1, 0.0)]
    assert r.total.instances == 2
    r = process_report(db, sys, period(), key="routing", now=NOW)
    assert r.total.instances == 3
    r = process_report(db, sys, period(department_id=org.sales_id), now=NOW)
    assert figures([r.total]) == {"": (2, 1, 0, 1.75, 2, 1, 50.0, 1, 1)}


def test_each_user_sees_what_his_rights_allow(db, org, fixed):
    m1 = process_report(db, actor(db, org.m1), period(), now=NOW)
    assert figures([m1.total]) == {"": (1, 1, 0, 0.5, 1, 0, 0.0, 1, 0)}
    head = process_report(db, actor(db, org.head), period(), now=NOW)
    assert head.total.instances == 2 and {f.label for f in head.by_manager} == {
        "Manager One", "Manager Two"}
