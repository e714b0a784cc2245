"""The shipped ``stale_deal_followup``: weekday mornings, a follow-up to-do for every open deal
nobody has touched for 7 days — through the app's engine, the CRM selector and services."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from sqlalchemy import select, update

from automation.selection import CrmSelector
from automation.setup import build_engine
from crm_models.activity import Activity, AuditEvent
from crm_models.entities import Deal, Lead, Stage
from engine.errors import DefinitionInvalid
from engine.ports import SelectionSpec
from engine.scheduler import TimerRunner
from engine.store import ProcessDefinition, Timer, TimerStatus

from ..automation.support import instances_of
from ..engine.support import FakeClock

MSK = zoneinfo.ZoneInfo("Europe/Moscow")
#: Fixed "now"s: no test here depends on the day it runs (the schedule is weekday mornings,
#: so "tomorrow" is a day later from Monday to Thursday and three days later on a Friday).
MONDAY_NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=MSK)
THURSDAY_NOON = dt.datetime(2026, 3, 5, 12, 0, tzinfo=MSK)
FRIDAY_EVENING = dt.datetime(2026, 3, 6, 19, 0, tzinfo=MSK)


def msk(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, 0, tzinfo=MSK)


@pytest.fixture()
def deployed_at(request, app, monkeypatch):
    """The app engine's clock frozen at ``request.param`` (default Monday noon) — request it
    before ``demo``, which deploys the shipped processes and arms their schedules."""
    now = getattr(request, "param", MONDAY_NOON).astimezone(dt.UTC)
    monkeypatch.setattr(app.extensions["engine"], "clock", FakeClock(now))
    return now


def age(db, model, record_id, days, now):
    """Pretend nothing happened on the record for ``days`` days (before ``now``)."""
    then = now - dt.timedelta(days=days)
    db.execute(update(model).where(model.id == record_id).values(updated_at=then))
    db.execute(update(AuditEvent).where(AuditEvent.entity_type == model.entity_type,
                                        AuditEvent.entity_id == record_id).values(at=then))
    db.commit()


@pytest.fixture()
def followup(db, demo):
    return db.scalars(select(ProcessDefinition).where(
        ProcessDefinition.key == "stale_deal_followup")).one()


def deals(db):
    return {d.title: d for d in db.scalars(select(Deal).order_by(Deal.id))}


def follow_ups(db):
    db.rollback()
    return list(db.scalars(select(Activity).where(Activity.subject.startswith("Напомнить о сделке: "))
                           .order_by(Activity.id)))


@pytest.mark.parametrize(("deployed_at", "first"), [
    (MONDAY_NOON, msk(3)), (FRIDAY_EVENING, msk(9)), (msk(4, 8), msk(4))],
    indirect=["deployed_at"])
def test_the_schedule_is_armed_for_the_next_weekday_morning(deployed_at, db, followup, first):
    [row] = db.scalars(select(Timer).where(Timer.definition_id == followup.id)).all()
    assert (row.status, row.kind) == (TimerStatus.PENDING, "start")
    assert row.due_at == first
    assert followup.schedules[0]["select"] == {"entity": "deal", "idle_days": 7,
                                               "open_only": True, "filters": []}


@pytest.fixture()
def clock(deployed_at):
    return FakeClock(deployed_at)


@pytest.fixture()
def timed_runner(app, clock):
    """A runner whose engine (with every CRM operation) lives on an injected clock."""
    return TimerRunner(build_engine(clock=clock), app.extensions["db_sessionmaker"],
                       worker_id="timed")


def pending_row(db, definition_id):
    db.rollback()
    return db.scalars(select(Timer).where(Timer.definition_id == definition_id,
                                          Timer.status == TimerStatus.PENDING)).one()


@pytest.mark.parametrize(("deployed_at", "first", "second"), [
    # Tuesday, then Wednesday: the deal touched six days before the first run has been idle
    # exactly seven days at the second (the boundary: it is picked)
    (MONDAY_NOON, msk(3), msk(4)),
    # Friday, then Monday: nine days
    (THURSDAY_NOON, msk(6), msk(9))], indirect=["deployed_at"])
def test_idle_open_deals_get_one_follow_up_each(deployed_at, db, demo, followup, clock,
                                                timed_runner, first, second):
    due = pending_row(db, followup.id).due_at
    assert due == first
    by_title = deals(db)
    fresh = by_title["Тестовый заказ"]
    for d in by_title.values():
        if d is not fresh:
            age(db, Deal, d.id, 8, now=due)
    age(db, Deal, by_title["Пилотный проект"].id, 6, now=due)  # touched 6 days before

    clock.current = due
    assert timed_runner.run_due().fired == 1
    db.rollback()
    closed = {s.id for s in db.scalars(select(Stage).where(Stage.semantics != "process"))}
    expected = sorted(d.id for d in by_title.values() if d.stage_id not in closed
                      and d.title not in ("Тестовый заказ", "Пилотный проект"))
    assert len(expected) == 7  # the demo's open deals (one from a converted lead), less two
    todos = follow_ups(db)
    assert sorted(a.entity_id for a in todos) == expected
    for a in todos:
        deal = db.get(Deal, a.entity_id)
        assert (a.type, a.subject, a.responsible_id) == ("todo", f"Напомнить о сделке: {deal.title}",
                                                         deal.responsible_id)
        assert a.due_at == due + dt.timedelta(hours=8)  # 17:00 Moscow
    instances = instances_of(db, "stale_deal_followup")
    assert sorted(i.entity_id for i in instances) == expected
    assert {i.status for i in instances} == {"completed"}
    fired = db.scalars(select(Timer).where(Timer.definition_id == followup.id,
                                           Timer.status == TimerStatus.FIRED)).one()
    assert fired.note == "started 7 instances"

    # the next weekday morning: the follow-ups touched those deals, so none is planned twice;
    # the deal touched six days before the first run has now been idle for a week
    nxt = pending_row(db, followup.id)
    assert nxt.due_at == second
    clock.current = nxt.due_at
    assert timed_runner.run_due().fired == 1
    later = follow_ups(db)[len(todos):]
    assert [a.entity_id for a in later] == [by_title["Пилотный проект"].id]


def test_the_selector_reads_like_the_list_filters(deployed_at, db, demo):
    selector = CrmSelector()
    now = deployed_at
    for d in deals(db).values():
        age(db, Deal, d.id, 10, now=now)
    big = selector.select(db, SelectionSpec("deal", 7, True, (("amount__gte", "1000000"),)),
                          now)
    assert sorted(r.data["deal"]["title"] for r in big) == [
        "Оснащение склада", "Поставка станков", "Расширение лицензий"]
    assert {r.data["event"]["type"] for r in big} == {"schedule"}
    every = selector.select(db, SelectionSpec("deal", None, False), now)
    assert len(every) == len(deals(db))
    converted = db.scalars(select(Lead).where(Lead.status == "CONVERTED")).all()
    leads = selector.select(db, SelectionSpec("lead"), now)
    assert converted and not {r.entity_id for r in leads} & {c.id for c in converted}
    assert selector.validate(db, SelectionSpec("deal", filters=(("colour", "red"),))) == \
        "filter colour: cannot filter deal by this field"
    assert selector.validate(None, SelectionSpec("ship")).startswith("unknown entity 'ship'")


def test_a_bad_selection_is_refused_at_deploy_naming_the_start_event(db, demo, engine):
    from automation.seed import PROCESSES_DIR

    xml = (PROCESSES_DIR / "stale_deal_followup.bpmn").read_text(encoding="utf-8").replace(
        'openOnly="true"/>', 'openOnly="true"><marshrut:filter name="stage__in" '
                             'value="NEW"/><marshrut:filter name="size" value="XL"/>'
                             '</marshrut:select>')
    with pytest.raises(DefinitionInvalid) as info:
        engine.deploy(db, xml)
    assert [(e.element_id, e.message) for e in info.value.errors] == [
        ("Start_WeekdayMornings", "marshrut:select: filter size: cannot filter deal by this "
                                  "field")]
