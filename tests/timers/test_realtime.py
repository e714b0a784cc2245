"""On time to the second, with the real clock: the app's scheduler (APScheduler as the alarm
clock, due times in the database) fires a timer within one second of its due time."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select

from engine.ports import StartRequest
from engine.store import ProcessInstance, Status, Timer
from web.scheduling import start_in_process, stop_in_process

from .support import wait_process, wait_until


@pytest.fixture()
def scheduler(app):
    sched = app.extensions["timer_scheduler"]
    yield sched
    stop_in_process(sched)
    sched.poll = app.config["TIMER_POLL_SECONDS"]


def fired_row(factory, instance_id):
    with factory() as s:
        row = s.scalars(select(Timer).where(Timer.instance_id == instance_id)).one()
        inst_status = s.get_one(ProcessInstance, instance_id).status
        return (row, inst_status) if row.fired_at is not None else None


def start_waiting(app, db, key, duration):
    engine = app.extensions["engine"]
    d = engine.deploy(db, wait_process(key, duration))
    db.commit()
    inst = engine.start(db, d, StartRequest({}))
    db.commit()  # the commit wakes the scheduler (engine.scheduler.install_wakeup)
    return inst


@pytest.mark.parametrize("poll", [0.5, 30.0])
def test_a_timer_fires_within_a_second_of_its_due_time(app, db, scheduler, poll):
    """With the usual 0.5 s poll, and with a 30 s poll: then only the in-process wake-up
    on commit can make it in time."""
    scheduler.poll = poll
    assert start_in_process(scheduler)
    time.sleep(0.3)  # the scheduler is idle, waiting
    inst = start_waiting(app, db, f"wait_{int(poll * 10)}", "PT1S")
    row, status = wait_until(lambda: fired_row(app.extensions["db_sessionmaker"], inst.id),
                             timeout=5)
    observed = dt.datetime.now(dt.UTC)
    assert status == Status.COMPLETED
    assert dt.timedelta(0) <= row.fired_at - row.due_at < dt.timedelta(seconds=1)
    assert observed - row.due_at < dt.timedelta(seconds=1.5)  # committed, seen by us
    assert row.fired_by == scheduler.runner.worker_id


def test_only_one_scheduler_runs_per_process(app, scheduler):
    from engine.scheduler import TimerRunner, TimerScheduler

    assert start_in_process(scheduler)
    assert start_in_process(scheduler)  # the same one: fine, nothing new started
    other = TimerScheduler(TimerRunner(app.extensions["engine"],
                                       app.extensions["db_sessionmaker"]))
    assert not start_in_process(other)
    assert scheduler.running and not other.running


def test_the_testing_app_starts_no_scheduler(app):
    assert not app.extensions["timer_scheduler"].running
