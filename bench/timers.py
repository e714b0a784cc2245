"""Timer benchmark: fire lateness with a large ``timer`` table, and the scheduler's idle CPU.

    .venv/bin/python bench/timers.py [--n 10000] [--fire 2000] [--window 200] [--idle 10]
                                     [--pg postgresql+psycopg://…/db [--workers 3]]

Set-up: N instances of a process waiting on an intermediate timer (one started through the
engine, the others copies of it inserted in bulk — the set-up is not what is measured), so
the ``timer`` table holds N pending rows. ``--fire`` of them are due at evenly spread moments
over ``--window`` seconds starting a few seconds after the scheduler starts; the others are due
tomorrow and stay pending throughout. The app's scheduler then runs as in production:
``TimerScheduler`` (APScheduler waking the loop at the next due time, 0.5 s poll) over
``TimerRunner`` (claim with a lease, fire each timer in its own transaction), with the
SystemClock and every CRM operation registered.

Reported: lateness of each fired timer — when it was picked up (``timer.fired_at``) and when
the transaction that fired it and advanced its instance had committed — as p50/p99/max
(target: p99 < 1 s); then the process's CPU time (``resource.getrusage``) over ``--idle``
seconds while the scheduler idles with the remaining timers pending. ``--pg URL`` EMPTIES
that database. With ``--workers N`` (PostgreSQL) the timers are fired by N ``flask worker``
processes instead, as when scaled out; their idle CPU is read from ``/proc``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from sqlalchemy import func, insert, select, text, update  # noqa: E402

import crm_models  # noqa: E402,F401
from automation import models as _automation_models  # noqa: E402,F401
from automation.setup import build_engine  # noqa: E402
from crm_models.db import make_engine, make_sessionmaker  # noqa: E402
from engine.ports import StartRequest  # noqa: E402
from engine.scheduler import RunReport, TimerRunner, TimerScheduler, install_wakeup  # noqa: E402
from engine.store import ProcessInstance, Timer, TimerStatus  # noqa: E402

WAIT = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_bench"
                  targetNamespace="http://marshrut.dev/bench">
  <bpmn:process id="bench_wait" isExecutable="true">
    <bpmn:startEvent id="Start_Event"/>
    <bpmn:intermediateCatchEvent id="Wait">
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="Done"><bpmn:script>done = True</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="End_Event"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_Event" targetRef="Wait"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Wait" targetRef="Done"/>
    <bpmn:sequenceFlow id="F3" sourceRef="Done" targetRef="End_Event"/>
  </bpmn:process>
</bpmn:definitions>
"""


class MeasuringRunner(TimerRunner):
    """Notes when each timer's transaction has committed."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.committed: dict[int, dt.datetime] = {}

    def _fire(self, timer_id: int, report: RunReport) -> None:
        super()._fire(timer_id, report)
        self.committed[timer_id] = dt.datetime.now(dt.UTC)


def migrate(url: str, db_engine: Any) -> None:
    if db_engine.dialect.name == "postgresql":
        with db_engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    with db_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def setup(factory: Any, engine: Any, n: int) -> list[int]:
    """N instances waiting on a timer; returns their timer ids."""
    with factory() as s:
        d = engine.deploy(s, WAIT)
        s.commit()
        first = engine.start(s, d, StartRequest({}))
        s.commit()
        timer = s.scalars(select(Timer).where(Timer.instance_id == first.id)).one()
        cols = ("definition_id", "status", "state", "serializer_version", "waiting",
                "started_at", "incident_attempts")
        ids: list[int] = []
        for chunk in range(0, n - 1, 2000):
            size = min(2000, n - 1 - chunk)
            ids += s.scalars(insert(ProcessInstance).returning(ProcessInstance.id), [
                {c: getattr(first, c) for c in cols} | {"version": 1} for _ in range(size)])
        tcols = ("kind", "definition_id", "element_id", "spiff_task_id", "expression",
                 "due_at", "sequence", "status", "attempts", "created_at")
        for chunk in range(0, len(ids), 2000):
            s.execute(insert(Timer), [{c: getattr(timer, c) for c in tcols} | {"instance_id": i}
                                      for i in ids[chunk:chunk + 2000]])
        s.commit()
        return list(s.scalars(select(Timer.id).order_by(Timer.id)))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="pending timers")
    ap.add_argument("--fire", type=int, default=2_000, help="how many of them become due")
    ap.add_argument("--window", type=float, default=200.0, help="seconds they are spread over")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measured")
    ap.add_argument("--pg", help="PostgreSQL URL (the database is emptied)")
    ap.add_argument("--workers", type=int, default=0,
                    help="fire with this many flask worker processes (PostgreSQL)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="marshrut-bench-")
    url = args.pg or f"sqlite:///{os.path.join(tmp, 'bench.sqlite3')}"
    db_engine = make_engine(url)
    migrate(url, db_engine)
    factory = make_sessionmaker(db_engine)
    engine = build_engine()
    t0 = time.perf_counter()
    timer_ids = setup(factory, engine, args.n)
    print(f"{engine.timer_service.pending_count(factory())} pending timers in "
          f"{db_engine.dialect.name}, set up in {time.perf_counter() - t0:.1f} s")

    runner = MeasuringRunner(engine, factory, worker_id="bench")
    scheduler = TimerScheduler(runner)
    workers = start_workers(url, args.workers) if args.workers else []
    if not workers:
        install_wakeup(factory, scheduler)
        scheduler.start()
    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)  # the first ones: soon
    step = args.window / max(1, args.fire - 1)
    due = {tid: start + dt.timedelta(seconds=i * step) for i, tid in enumerate(
        timer_ids[:: max(1, len(timer_ids) // args.fire)][:args.fire])}
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with factory() as s:
        s.execute(update(Timer), [{"id": tid, "due_at": due.get(tid, tomorrow)}
                                  for tid in timer_ids])
        s.commit()

    print(f"{len(due)} timers due over {args.window:.0f} s from {start:%H:%M:%S} "
          f"({len(due) / max(args.window, 1):.1f}/s) …")
    deadline = time.monotonic() + args.window + 120
    while time.monotonic() < deadline:
        with factory() as s:
            fired = s.scalar(select(func.count()).select_from(Timer).where(
                Timer.status == TimerStatus.FIRED)) or 0
        if fired >= len(due):
            break
        time.sleep(1)

    with factory() as s:
        rows = s.execute(select(Timer.id, Timer.due_at, Timer.fired_at).where(
            Timer.status == TimerStatus.FIRED)).all()
        pending = engine.timer_service.pending_count(s)
    picked = [(r.fired_at - r.due_at).total_seconds() for r in rows]
    committed = [(runner.committed[r.id] - r.due_at).total_seconds() for r in rows
                 if r.id in runner.committed]
    print(f"fired {len(rows)} of {len(due)}; {pending} still pending")
    for name, values in (("picked up", picked), ("committed", committed)):
        if values:
            print(f"lateness {name:9}: p50 {percentile(values, 50) * 1000:7.1f} ms   "
                  f"p99 {percentile(values, 99) * 1000:7.1f} ms   "
                  f"max {max(values) * 1000:7.1f} ms   mean "
                  f"{statistics.fmean(values) * 1000:7.1f} ms")

    time.sleep(1)
    before = cpu_seconds(workers)
    wall = time.perf_counter()
    time.sleep(args.idle)
    cpu = cpu_seconds(workers) - before
    elapsed = time.perf_counter() - wall
    who = f"{len(workers)} worker processes" if workers else \
        f"the scheduler's process ({threading.active_count()} threads)"
    print(f"idle: {cpu * 1000:.0f} ms CPU in {elapsed:.1f} s = {100 * cpu / elapsed:.2f}% of "
          f"one core for {who}, with {pending} timers pending")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    scheduler.shutdown()
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def start_workers(url: str, n: int) -> list[subprocess.Popen[bytes]]:
    """``flask worker`` processes on the bench database, once they are all running."""
    if not url.startswith("postgresql"):
        sys.exit("--workers needs --pg: several workers share timers on PostgreSQL only")
    env = dict(os.environ, MARSHRUT_DATABASE_URL=url, MARSHRUT_SECRET_KEY="bench",
               MARSHRUT_WEBHOOK_DELIVERY_THREAD="false")
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker",
                               "--id", f"bench-{i}"], cwd=ROOT, env=env,
                              stderr=subprocess.PIPE) for i in range(n)]
    for proc in procs:  # each says so on stderr once its scheduler runs
        assert proc.stderr is not None
        print("  " + proc.stderr.readline().decode().strip())
        # keep reading, or a worker that logs much would block on a full pipe
        threading.Thread(target=proc.stderr.read, daemon=True).start()
    return procs


def cpu_seconds(workers: list[subprocess.Popen[bytes]]) -> float:
    """CPU time of this process, or of the worker processes (from /proc)."""
    if not workers:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in workers:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


if __name__ == "__main__":
    main()
