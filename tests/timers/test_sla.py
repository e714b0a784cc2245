"""The SLA of ``large_deal_routing``: if the corporate-accounts manager has not acted within two
working hours, the head of Sales and the manager are notified and the deal and its task go to
the head of Sales; acting in time cancels the escalation."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from sqlalchemy import select

from automation.models import Notification
from crm_models.entities import Deal
from engine.store import Timer, TimerKind, TimerStatus

from ..automation.support import api_as, instances_of, tasks_of
from ..engine.support import FakeClock
from .support import make_due

MSK = zoneinfo.ZoneInfo("Europe/Moscow")


def large_deal(app, db):
    manager = api_as(app, db, "manager1@demo.local")
    r = manager.post("/api/v1/deals", json={"title": "Станки для завода", "amount": "2500000"})
    assert r.status_code == 201, r.get_json()
    deal_id = r.get_json()["id"]
    [inst] = instances_of(db, "large_deal_routing", entity_id=deal_id)
    return deal_id, inst


def sla_timer(db, instance_id):
    db.rollback()
    return db.scalars(select(Timer).where(Timer.instance_id == instance_id)).one()


@pytest.mark.parametrize(("routed_at", "due"), [
    (dt.datetime(2026, 3, 3, 11, 0, tzinfo=MSK), dt.datetime(2026, 3, 3, 13, 0, tzinfo=MSK)),
    # an hour before the end of a Friday: one hour then, one on Monday morning
    (dt.datetime(2026, 3, 6, 17, 0, tzinfo=MSK), dt.datetime(2026, 3, 9, 10, 0, tzinfo=MSK)),
    # a Saturday: from Monday's start
    (dt.datetime(2026, 3, 7, 12, 0, tzinfo=MSK), dt.datetime(2026, 3, 9, 11, 0, tzinfo=MSK))])
def test_the_sla_is_two_working_hours_from_the_routing(app, db, demo, monkeypatch,
                                                       routed_at, due):
    monkeypatch.setattr(app.extensions["engine"], "clock", FakeClock(routed_at))
    _deal_id, inst = large_deal(app, db)
    row = sla_timer(db, inst.id)
    assert (row.kind, row.element_id, row.status, row.expression) == (
        TimerKind.BOUNDARY, "Timer_ContactSLA", TimerStatus.PENDING, "PT2H")
    assert inst.started_at == routed_at and row.due_at == due


def test_missed_sla_notifies_and_hands_deal_and_task_to_the_head(app, db, demo, runner):
    deal_id, inst = large_deal(app, db)
    [task] = tasks_of(db, entity_id=deal_id, definition_key="large_deal_routing")
    assert task.assignee_id == demo.corporate.id
    assert make_due(db, Timer.instance_id == inst.id) == 1

    assert runner.run_due().fired == 1
    db.rollback()
    assert db.get(Deal, deal_id).responsible_id == demo.head.id
    tasks = {t.element_id: t for t in tasks_of(db, entity_id=deal_id,
                                                 definition_key="large_deal_routing")}
    assert tasks["Task_ContactClient"].status == "cancelled"
    escalated = tasks["Task_ContactClientEscalated"]
    assert (escalated.status, escalated.assignee_id, escalated.priority) == ("open",
                                                                           demo.head.id, 1)
    assert "за два рабочих часа" in escalated.instructions
    notified = db.scalars(select(Notification.user_id).where(
        Notification.entity_id == deal_id, Notification.title.startswith("Срок нарушен"))).all()
    assert sorted(notified) == sorted([demo.head.id, demo.corporate.id])
    assert sla_timer(db, inst.id).status == TimerStatus.FIRED
    # the head acts: the process ends on its escalation branch
    head = api_as(app, db, "head@demo.local")
    r = head.post(f"/api/v1/tasks/{escalated.id}/complete", json={"outcome": "reached"})
    assert r.status_code == 200, r.get_json()
    [inst] = instances_of(db, "large_deal_routing", entity_id=deal_id)
    assert inst.status == "completed"
    assert [h.element_id for h in app.extensions["engine"].history(db, inst.id)
            if h.event == "left"][-1] == "End_Escalated"


def test_acting_in_time_cancels_the_escalation(app, db, demo, runner):
    deal_id, inst = large_deal(app, db)
    [task] = tasks_of(db, entity_id=deal_id, definition_key="large_deal_routing")
    corporate = api_as(app, db, "corporate@demo.local")
    r = corporate.post(f"/api/v1/tasks/{task.id}/complete", json={"outcome": "reached"})
    assert r.status_code == 200, r.get_json()
    row = sla_timer(db, inst.id)
    assert row.status == TimerStatus.CANCELLED
    assert make_due(db, Timer.instance_id == inst.id) == 0
    assert runner.run_due().claimed == 0
    db.rollback()
    assert db.get(Deal, deal_id).responsible_id == demo.corporate.id
