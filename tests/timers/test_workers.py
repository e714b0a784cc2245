"""Scaled out on PostgreSQL: ``flask worker`` processes share the due timers (``FOR UPDATE SKIP
LOCKED``), none fires twice, and a worker killed mid-run loses nothing: when its lease ends
the others fire what it had claimed.

Real subprocesses running the worker CLI against the test database. PostgreSQL only: on
SQLite one process writes at a time, which is the embedded set-up (one scheduler)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.ports import StartRequest
from engine.store import ProcessHistory, ProcessInstance, Status, Timer, TimerStatus

from .support import clone_waiting, make_due, wait_process, wait_until

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
TIMERS = 1000
LEASE = 2  # seconds: a killed worker's timers are retaken this soon


@pytest.fixture()
def pg_url(app):
    url = app.config["DATABASE_URL"]
    if not url.startswith("postgresql"):
        pytest.skip("several worker processes need PostgreSQL (SKIP LOCKED); SQLite is the "
                    "embedded, single-scheduler set-up")
    return url


@pytest.fixture()
def workers(pg_url, tmp_path):
    procs: dict[str, subprocess.Popen] = {}
    logs = []

    def spawn(name: str, extra: dict[str, str] | None = None) -> subprocess.Popen:
        env = dict(os.environ, **(extra or {}), MARSHRUT_DATABASE_URL=pg_url, MARSHRUT_SECRET_KEY="test",
                   MARSHRUT_TIMER_LEASE_SECONDS=str(LEASE), MARSHRUT_TIMER_BATCH="20",
                   MARSHRUT_WEBHOOK_DELIVERY_THREAD="false", PYTHONUNBUFFERED="1")
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed at teardown
        logs.append(log)
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "worker", "--id", name],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        return procs[name]

    def running(name: str) -> bool:
        return f"worker {name} firing timers" in (tmp_path / f"{name}.log").read_text()

    spawn.running = running  # type: ignore[attr-defined]

    yield spawn
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for log in logs:
        log.close()
    for name in procs:
        log = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in log, f"worker {name}:\n{log}"


def count(factory, *where):
    with factory() as s:
        return s.scalar(select(func.count()).select_from(Timer).where(*where))


def test_three_workers_fire_each_timer_once_even_when_one_is_killed(app, db, workers):
    engine = app.extensions["engine"]
    factory = app.extensions["db_sessionmaker"]
    d = engine.deploy(db, wait_process("burst", "PT1H"))
    db.commit()
    first = engine.start(db, d, StartRequest({}))
    db.commit()
    assert len(clone_waiting(db, first.id, TIMERS - 1)) == TIMERS
    procs = {name: workers(name) for name in ("w1", "w2", "w3")}
    wait_until(lambda: all(workers.running(n) for n in procs), timeout=120, every=0.2)
    assert make_due(db, Timer.definition_id == d.id) == TIMERS

    # (generous time limits: they only bound a slow machine; a quiet one takes seconds)
    wait_until(lambda: count(factory, Timer.status == TimerStatus.FIRED) >= TIMERS // 5,
               timeout=180, every=0.1)
    procs["w1"].send_signal(signal.SIGKILL)  # no clean-up, no commit of what it was doing
    procs["w1"].wait()
    with factory() as s:
        orphaned = set(s.scalars(select(Timer.id).where(
            Timer.locked_by == "w1", Timer.status == TimerStatus.PENDING)))
    wait_until(lambda: count(factory, Timer.status == TimerStatus.FIRED) == TIMERS,
               timeout=300, every=0.2)

    db.rollback()
    rows = db.scalars(select(Timer).where(Timer.definition_id == d.id)).all()
    assert len(rows) == TIMERS and {r.status for r in rows} == {TimerStatus.FIRED}
    by = Counter(r.fired_by for r in rows)
    assert set(by) <= {"w1", "w2", "w3"} and by["w2"] > 0 and by["w3"] > 0, by
    # exactly once: each instance recorded one timer fire and finished once
    fires = Counter(db.scalars(select(ProcessHistory.instance_id).where(
        ProcessHistory.event == "timer_fired")))
    finished = Counter(db.scalars(select(ProcessHistory.instance_id).where(
        ProcessHistory.event == "finished")))
    ids = set(db.scalars(select(ProcessInstance.id).where(
        ProcessInstance.definition_id == d.id)))
    assert fires == finished == Counter(ids)
    statuses = set(db.scalars(select(ProcessInstance.status).where(
        ProcessInstance.definition_id == d.id)))
    assert statuses == {Status.COMPLETED}
    # what the killed worker held was fired by the others after its lease ended
    taken_over = [r for r in rows if r.id in orphaned]
    assert all(r.fired_by in ("w2", "w3") and r.attempts >= 2 for r in taken_over)
