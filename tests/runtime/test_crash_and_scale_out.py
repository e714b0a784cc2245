"""Crash safety and scale-out through real processes (gunicorn as ``make run`` starts it,
``flask worker`` as README's Production section starts it).

Clients create deals (a third routed by the large-deal rule) while timers fall due; mid-load
a web process group and (on PostgreSQL) a worker are killed with SIGKILL and started again.
Afterwards every acknowledged deal is in the database, every routed deal has exactly one task,
every due timer fired exactly once, and no outbox event is left undispatched.

SQLite: the embedded set-up (one gunicorn, background work inside it). PostgreSQL: 2 web
processes (``MARSHRUT_RUN_SCHEDULER=false``) + 2 workers."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter

from sqlalchemy import func, select

from crm_models.activity import OutboxEvent
from crm_models.entities import Deal
from crm_models.org import User
from engine.ports import StartRequest
from engine.store import ProcessHistory, ProcessTask, Timer, TimerStatus

from ..timers.support import clone_waiting, make_due, wait_process, wait_until
from .server import BIN, ROOT, env_for, flask_cli, request, start_server

TIMERS = 200
THRESHOLD = 1_000_000
FAST = {"MARSHRUT_DISPATCH_INTERVAL": "1", "MARSHRUT_TIMER_LEASE_SECONDS": "2",
        "MARSHRUT_WEBHOOK_DELIVERY_THREAD": "false"}


def spawn_worker(url: str, name: str, log_path) -> subprocess.Popen:
    with open(log_path, "a") as log:
        return subprocess.Popen([str(BIN / "flask"), "--app", "app", "worker", "--id", name],
                                cwd=ROOT, env=env_for(url, PYTHONUNBUFFERED="1", **FAST),
                                stdout=log, stderr=subprocess.STDOUT)


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the master and its workers: a crash, no clean-up
    proc.wait(10)


def wait_for_acknowledged(acknowledged: list, lock: threading.Lock, n: int,
                          deadline: float = 90) -> None:
    """Until ``n`` deals are acknowledged (or ``deadline`` seconds: the assertions after
    the load then say what was missing)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with lock:
            if len(acknowledged) >= n:
                return
        time.sleep(0.2)


def test_kill_9_mid_load_loses_nothing_and_routes_each_deal_once(app, db, tmp_path):
    url = app.config["DATABASE_URL"]
    pg = url.startswith("postgresql")
    flask_cli(url, "init-db", "--demo")
    token = flask_cli(url, "create-token", "manager1@demo.local").strip()
    engine = app.extensions["engine"]
    d = engine.deploy(db, wait_process("crash_timers", "PT1H"))
    db.commit()
    first = engine.start(db, d, StartRequest({}))
    db.commit()
    clone_waiting(db, first.id, TIMERS - 1)

    web_env = dict(FAST, MARSHRUT_RUN_SCHEDULER="false") if pg else dict(FAST)
    n_web = 2 if pg else 1
    servers = [start_server(url, tmp_path / f"web{i}.log", workers=1, threads=6, **web_env)
               for i in range(n_web)]
    workers = [spawn_worker(url, f"w{i}", tmp_path / f"w{i}.log") for i in range(2)] if pg \
        else []
    acknowledged: list[tuple[int, int]] = []
    refused: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            server = servers[(n + i) % len(servers)]
            amount = 1_500_000 if i % 3 == 0 else 10_000
            try:
                status, body, _ = request("POST", server.url + "/api/v1/deals", token,
                                          {"title": f"Сбой {n}-{i}", "amount": amount},
                                          timeout=30)
            except OSError:  # the server was killed under us: not acknowledged
                time.sleep(0.05)
                continue
            with lock:
                if status == 201:
                    acknowledged.append((body["id"], amount))
                else:
                    refused[str(status)] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    try:
        # a loaded machine (CI runs two suites side by side) answers slowly: wait for traffic,
        # not for a fixed time, before and after the crash
        wait_for_acknowledged(acknowledged, lock, 11)
        make_due(db, Timer.definition_id == d.id)
        time.sleep(1)
        # crash: the first web process group and a worker, mid-load and mid-firing
        kill_group(servers[0].proc)
        if workers:
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(10)
        time.sleep(1)
        servers[0] = start_server(url, tmp_path / "web0-restarted.log", workers=1, threads=6,
                                  **web_env)
        if workers:
            workers[0] = spawn_worker(url, "w0b", tmp_path / "w0b.log")
        with lock:
            before = len(acknowledged)
        wait_for_acknowledged(acknowledged, lock, before + 20)
    finally:
        stop.set()
        for t in threads:
            t.join(60)

    try:
        large = [i for i, a in acknowledged if a > THRESHOLD]
        assert len(acknowledged) > 30 and large
        assert not refused, refused  # a busy database is never an error for these clients

        def settled() -> bool:
            with app.extensions["db_sessionmaker"]() as s:
                pending = s.scalar(select(func.count()).select_from(OutboxEvent).where(
                    OutboxEvent.dispatched_at.is_(None)))
                due = s.scalar(select(func.count()).select_from(Timer).where(
                    Timer.definition_id == d.id, Timer.status != TimerStatus.FIRED))
            return pending == 0 and due == 0

        wait_until(settled, timeout=120, every=0.5)
        db.rollback()
        ids = [i for i, _ in acknowledged]
        assert db.scalar(select(func.count()).select_from(Deal).where(Deal.id.in_(ids))) \
            == len(set(ids)) == len(ids)
        tasks = Counter(db.scalars(select(ProcessTask.entity_id).where(
            ProcessTask.entity_type == "deal", ProcessTask.entity_id.in_(large))))
        assert tasks == Counter({i: 1 for i in large})
        fires = Counter(db.scalars(select(ProcessHistory.instance_id).where(
            ProcessHistory.event == "timer_fired")))
        assert len(fires) == TIMERS and set(fires.values()) == {1}
    finally:
        for s in servers[1:] + servers[:1]:
            s.stop()
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                w.wait(20)
    for path in tmp_path.glob("*.log"):
        text = path.read_text(errors="replace")
        assert "Traceback" not in text, f"{path.name}:\n{text[-3000:]}"


def test_work_left_by_a_crash_is_taken_up_at_start_without_any_request(app, db, tmp_path):
    """Events a crash left undispatched are routed by the restarted server on its own, before
    any visitor arrives (background work starts with the process, not the first request)."""
    from automation.dispatcher import NO_DISPATCH
    from crm_models.services import records
    from tests.factories import SYSTEM

    url = app.config["DATABASE_URL"]
    flask_cli(url, "init-db", "--demo")
    db.info[NO_DISPATCH] = True  # as if the process died right after these commits
    m1 = db.scalar(select(User.id).where(User.email == "manager1@demo.local"))
    ids = [records.create(db, SYSTEM, "deal", {"title": f"Осталось {i}", "amount": "1500000",
                                               "responsible_id": m1}).id for i in range(5)]
    db.commit()
    db.info.pop(NO_DISPATCH)
    pending = select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.dispatched_at.is_(None))
    assert db.scalar(pending) >= 5
    server = start_server(url, tmp_path / "web.log", workers=1, threads=2, **FAST)
    try:
        wait_until(lambda: db.rollback() or db.scalar(pending) == 0, timeout=60, every=0.3)
        assert "GET /" not in server.log  # nobody visited
        tasks = Counter(db.scalars(select(ProcessTask.entity_id).where(
            ProcessTask.entity_type == "deal", ProcessTask.entity_id.in_(ids))))
        assert tasks == Counter({i: 1 for i in ids})
    finally:
        server.stop()
