"""Routing benchmark: N deals created through the service layer and routed by the shipped
processes, against a raw SpiffWorkflow loop on the same BPMN.

    .venv/bin/python bench/routing.py [--n 5000] [--pg postgresql+psycopg://…/db]
                                      [--rules all|large-deal|both] [--profile tottime]
                                      [--bulk [PER_TRANSACTION]] [--processes N]

Marshrut path, per deal, exactly as a request does it: ``create_deal`` as manager1 in a
session of the app's sessionmaker (``create_app`` + ``init-db --demo``), ``commit()`` — whose
after-commit hook dispatches the ``deal.created`` event: in one transaction the active
definitions start in order, each in a savepoint (the key-client rule, which ends at once for
these deals, then the large-deal rule), the large-deal rule reassigns the deal to the
corporate-accounts manager through ``crm.assign_responsible`` (audit + outbox event), and the
user task row with its SLA timer is written. Every deal is above the threshold, so every deal
is routed; the run checks that N deals ended with the new responsible and N open tasks.

Raw loop, per deal: a workflow of the same BPMN parsed once by SpiffWorkflow's own
``BpmnParser`` (its service task is a no-op), plain ``PythonScriptEngine`` conditions, the
routing decision written into the task data, the state serialized without the spec (as the
engine stores it) and inserted with the task row into SQLite in one transaction. No CRM work.

The two loops run in alternating blocks so both see the same machine load; the ratio is
given by wall clock and by CPU time (``time.process_time``, steadier on a busy machine).

``--bulk [N]``: bulk routing instead — ``--n`` deals committed with dispatch off (as an import
writes them), then their pending events dispatched by the recovery loop N per transaction
(default 50), each event in its own savepoint. ``--pg URL --processes K``: interactive routing
by one and by K app processes at once on that database (``--n`` deals each), the aggregate
rate and the ratio.
Latency is event → task: from ``create_deal`` returning (the event is written) to ``commit()``
returning (the instance and its task are committed). ``--pg URL`` EMPTIES that database.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.parser import BpmnParser  # noqa: E402
from SpiffWorkflow.bpmn.script_engine import (  # noqa: E402
    PythonScriptEngine,
    TaskDataEnvironment,
)
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer  # noqa: E402
from SpiffWorkflow.bpmn.specs.defaults import UserTask  # noqa: E402
from SpiffWorkflow.bpmn.specs.event_definitions.message import (  # noqa: E402
    MessageEventDefinition,
)
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import event, func, select, text  # noqa: E402

import crm_models  # noqa: E402,F401
from automation.seed import PROCESSES_DIR  # noqa: E402
from crm_models.db import make_engine  # noqa: E402
from crm_models.entities import Deal  # noqa: E402
from crm_models.org import User  # noqa: E402
from crm_models.permissions import actor_for  # noqa: E402
from crm_models.services import create_deal  # noqa: E402
from engine.store import ProcessTask  # noqa: E402

BPMN = PROCESSES_DIR / "large_deal_routing.bpmn"
WARMUP = 50


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- the Marshrut path ----------------------------------------------------------------------

class MarshrutRun:
    """The app as ``make run`` builds it (``create_app``: the after-commit dispatcher, the
    notifier, the webhook-delivery and timer-scheduler hooks on its sessionmaker), its
    database set up by ``flask init-db --demo``; ``block(k)`` creates and routes k deals the
    way a request does. ``rules="large-deal"`` deactivates the key-client rule, so that only
    the BPMN of the raw loop runs."""

    def __init__(self, url: str, rules: str = "all", fresh: bool = True) -> None:
        from app import create_app

        if fresh and url.startswith("postgresql"):
            wipe = make_engine(url)
            with wipe.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            wipe.dispose()
        # The embedded scheduler thread stays off (nothing falls due during a run); its
        # wake-up hook is installed all the same, as in every app process.
        self.app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench",
                               "RUN_SCHEDULER": False})
        if fresh:
            result = self.app.test_cli_runner().invoke(args=["init-db", "--demo"])
            if result.exit_code != 0:
                raise SystemExit(f"init-db failed: {result.output}")
        self.db_engine = self.app.extensions["db_engine"]
        self.factory = self.app.extensions["db_sessionmaker"]
        with self.factory() as s:
            if rules == "large-deal" and fresh:
                self.app.extensions["engine"].deactivate(s, "key_client_routing")
                s.commit()
            manager = s.scalars(select(User).where(User.email == "manager1@demo.local")).one()
            self.corporate_id = s.scalars(select(User.id).where(
                User.email == "corporate@demo.local")).one()
            self.actor = actor_for(s, manager)  # resolved once per request in the app, too
        self.latencies: list[float] = []
        self.wall = self.cpu = 0.0
        self.done = 0
        #: statements the driver executed for the measured deals (BEGIN, SAVEPOINT and
        #: RELEASE included, an executemany once), as tests/automation/test_statement_count.py
        self.statements = 0
        self._counting = False
        event.listen(self.db_engine, "before_cursor_execute", self._count)
        for i in range(WARMUP):
            self._one(f"Warm-up deal {i}")
        with self.factory() as s:
            self.tasks_before = s.scalar(select(func.count()).select_from(ProcessTask)) or 0

    def _one(self, title: str) -> float:
        with self.factory() as s:
            create_deal(s, self.actor, title=title, amount="2500000.00")
            t0 = time.perf_counter()
            s.commit()  # … and the after-commit dispatch routes it
            return time.perf_counter() - t0

    def _count(self, *args: Any) -> None:
        if self._counting:
            self.statements += 1

    def block(self, k: int) -> None:
        w, c = time.perf_counter(), time.process_time()
        self._counting = True
        for _ in range(k):
            self.latencies.append(self._one(f"Bench deal {self.done}"))
            self.done += 1
        self._counting = False
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c

    def bulk(self, n: int, per_transaction: int) -> None:
        """Bulk routing: n deals committed with dispatch off (as an import writes them; not
        measured), then the pending events dispatched ``per_transaction`` per transaction
        by the recovery loop (measured)."""
        from automation.dispatcher import NO_DISPATCH

        with self.factory() as s:
            s.info[NO_DISPATCH] = True
            for _ in range(n):
                create_deal(s, self.actor, title=f"Bench deal {self.done}", amount="2500000.00")
                self.done += 1
            s.commit()
        dispatcher = self.app.extensions["dispatcher"]
        w, c = time.perf_counter(), time.process_time()
        self._counting = True
        report = dispatcher.dispatch_pending(per_transaction=per_transaction)
        self._counting = False
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c
        if report.failed:
            print(f"  ERROR: {report.failed[:3]}", file=sys.stderr)

    def check(self) -> tuple[int, int]:
        """(deals now with the corporate manager, new tasks)."""
        with self.factory() as s:
            routed = s.scalar(select(func.count()).select_from(Deal).where(
                Deal.title.like("Bench deal %"), Deal.responsible_id == self.corporate_id)) or 0
            tasks = (s.scalar(select(func.count()).select_from(ProcessTask)) or 0)
        self.db_engine.dispose()
        return routed, tasks - self.tasks_before


# --- the raw SpiffWorkflow loop --------------------------------------------------------------

class AttrDict(dict):
    """Dot access for plain ``eval`` conditions (``deal.amount``), still a dict for JSON."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def raw_rose_above(event: Any, record: Any, field: str, limit: Any) -> bool:
    """The shipped condition's ``rose_above`` in plain Python (the sandbox's own, unguarded)."""
    value = record.get(field)
    if value is None or not Decimal(str(value)) > Decimal(str(limit)):
        return False
    if str(event.get("type") or "").endswith(".created"):
        return True
    before = (event.get("changed") or {}).get(field)
    old = before[0] if isinstance(before, list | tuple) and before else None
    return old is None or not Decimal(str(old)) > Decimal(str(limit))


class RawScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's plain engine, except that a bare ISO 8601 duration in a timer (``PT2H``,
    as our diagrams write the SLA boundary) is taken literally, as Marshrut's engine does."""

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        text = expression.strip()
        if re.fullmatch(r"P(?:\d+[YMWD])*(?:T(?:\d+[HMS])+)?", text):
            return text
        return super().evaluate(task, expression, external_context)


class RawRun:
    """The same BPMN on SpiffWorkflow alone: route, serialize, insert into SQLite."""

    def __init__(self, dbfile: Path) -> None:
        parser = BpmnParser()
        parser.add_bpmn_file(str(BPMN))
        self.spec = parser.get_spec("large_deal_routing")
        self.serializer = BpmnWorkflowSerializer()
        # ``decimal`` as the engine's sandbox offers it (the deal.updated branch reads it)
        self.script_engine = RawScriptEngine(
            environment=TaskDataEnvironment({"decimal": Decimal, "rose_above": raw_rose_above}))
        self.conn = sqlite3.connect(dbfile, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("CREATE TABLE instance (id INTEGER PRIMARY KEY, state TEXT)")
        self.conn.execute("CREATE TABLE task (id INTEGER PRIMARY KEY, instance_id INTEGER, "
                          "assignee TEXT, name TEXT)")
        self.wall = self.cpu = 0.0
        self.done = 0
        for i in range(WARMUP):
            self._one(-i)

    def _one(self, i: int) -> None:
        wf = BpmnWorkflow(self.spec, script_engine=self.script_engine)
        wf.task_tree.data.update({
            "deal": AttrDict(id=i, title=f"Raw {i}", amount=2500000, responsible_set_by=None,
                             responsible=AttrDict(id=4, email="manager1@demo.local")),
            "event": AttrDict(type="deal.created", id=i, changed={}),
            "threshold": 1000000})
        wf.do_engine_steps()
        wf.catch(BpmnEvent(MessageEventDefinition("deal.created"), {}))
        wf.do_engine_steps()
        # The library's service task waits STARTED for its result: the routing decision.
        [service] = wf.get_tasks(state=TaskState.STARTED)
        service.data["deal"]["responsible"] = {"id": 3, "email": "corporate@demo.local"}
        service.complete()
        wf.do_engine_steps()
        [task] = wf.get_tasks(state=TaskState.READY, manual=True)
        assert isinstance(task.task_spec, UserTask)
        state = self.serializer.to_dict(wf)
        state.pop("spec", None)
        state.pop("subprocess_specs", None)
        self.conn.execute("BEGIN")
        cur = self.conn.execute("INSERT INTO instance (state) VALUES (?)", (json.dumps(state),))
        self.conn.execute("INSERT INTO task (instance_id, assignee, name) VALUES (?, ?, ?)",
                          (cur.lastrowid, "corporate@demo.local", task.task_spec.bpmn_name))
        self.conn.execute("COMMIT")

    def block(self, k: int) -> None:
        w, c = time.perf_counter(), time.process_time()
        for _ in range(k):
            self._one(self.done)
            self.done += 1
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c

    def check(self) -> int:
        count = self.conn.execute("SELECT count(*) FROM task").fetchone()[0] - WARMUP
        self.conn.close()
        return count


def run(label: str, url: str, raw_file: Path, n: int, blocks: int,
        profile: str | None, rules: str) -> bool:
    """Alternate blocks of the two loops, so both see the same machine load."""
    raw, ours = RawRun(raw_file), MarshrutRun(url, rules)
    prof = cProfile.Profile() if profile else None
    k = max(1, n // blocks)
    while ours.done < n:
        step = min(k, n - ours.done)
        raw.block(step)
        if prof:
            prof.enable()
        ours.block(step)
        if prof:
            prof.disable()
    raw_tasks = raw.check()
    routed, tasks = ours.check()
    lat = [v * 1000 for v in ours.latencies]
    rate, raw_rate = n / ours.wall, n / raw.wall
    which = ("both shipped rules active (key client, then large deal)" if rules == "all"
             else "only the large-deal rule active (the raw loop's BPMN)")
    print(f"{label}, {which}: {n} deals, {blocks} blocks alternating with the raw loop")
    print(f"  raw SpiffWorkflow loop: {raw_rate:,.0f} routed/s "
          f"({raw.cpu / n * 1000:.2f} ms CPU each, {raw_tasks} task rows)")
    print(f"  Marshrut: {rate:,.0f} routed deals/s ({ours.cpu / n * 1000:.2f} ms CPU each; "
          f"{routed} deals now with the corporate manager, {tasks} tasks)")
    print(f"  event→task latency: p50 {percentile(lat, 50):.2f} ms, "
          f"p99 {percentile(lat, 99):.2f} ms, max {max(lat):.2f} ms, "
          f"mean {statistics.fmean(lat):.2f} ms")
    print(f"  SQL statements per routed deal: {ours.statements / n:.1f}")
    print(f"  ratio to the raw loop: {rate / raw_rate:.3f} by wall clock, "
          f"{raw.cpu / ours.cpu:.3f} by CPU time")
    if prof:
        pstats.Stats(prof).sort_stats(profile).print_stats(int(os.environ.get("BENCH_PROFILE_LINES", "45")))
    ok = routed == n and tasks == n and raw_tasks == n
    if not ok:
        print("  ERROR: not every deal was routed", file=sys.stderr)
    return ok


def run_bulk(label: str, url: str, n: int, per_transaction: int, rules: str) -> bool:
    """Bulk routing: n pending events dispatched ``per_transaction`` per transaction."""
    ours = MarshrutRun(url, rules)
    ours.bulk(n, per_transaction)
    routed, tasks = ours.check()
    print(f"{label}, bulk: {n} pending deal.created events, {per_transaction} per transaction"
          f" ({rules} rules)")
    print(f"  Marshrut: {n / ours.wall:,.0f} routed deals/s ({ours.cpu / n * 1000:.2f} ms CPU "
          f"each; {routed} deals now with the corporate manager, {tasks} tasks)")
    print(f"  SQL statements per routed deal: {ours.statements / n:.1f}")
    ok = routed == n and tasks == n
    if not ok:
        print("  ERROR: not every deal was routed", file=sys.stderr)
    return ok


def worker(url: str, n: int, start_at: float) -> int:
    """One app process of ``--processes``: n deals on an initialised database, as JSON."""
    ours = MarshrutRun(url, "all", fresh=False)
    while time.time() < start_at:
        time.sleep(0.01)
    ours.block(n)
    print(json.dumps({"n": n, "wall": ours.wall, "cpu": ours.cpu,
                      "statements": ours.statements}))
    return 0


def run_processes(url: str, n: int, processes: int) -> bool:
    """Interactive routing by 1 and by ``processes`` app processes on one PostgreSQL
    database (n deals each), started together; the aggregate rate and its ratio."""
    MarshrutRun(url, "all").db_engine.dispose()  # wipe, init-db --demo, warm-up
    rates = {}
    for k in (1, processes):
        start_at = time.time() + 8  # every worker has built its app by then
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", "--pg", url,
                                   "--n", str(n), "--start-at", str(start_at)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(k)]
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        wall = max(r["wall"] for r in results)
        rates[k] = k * n / wall
        cpu = statistics.fmean(r["cpu"] / r["n"] * 1000 for r in results)
        print(f"PostgreSQL, {k} process{'es' if k > 1 else ''}, {n} deals each: "
              f"{rates[k]:,.0f} routed deals/s in all ({cpu:.2f} ms client CPU per deal)")
    print(f"  {processes} processes / 1: {rates[processes] / rates[1]:.2f}×")
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--pg", help="also run on this PostgreSQL URL (its data is ERASED)")
    ap.add_argument("--profile", choices=("cumulative", "tottime"),
                    help="profile the Marshrut side of the SQLite run, in this order")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--rules", choices=("all", "large-deal", "both"), default="both",
                    help="all: both shipped rules active, as in the demo; large-deal: only the "
                         "raw loop's BPMN; both: one run of each (default)")
    ap.add_argument("--bulk", type=int, metavar="PER_TRANSACTION", nargs="?", const=50,
                    help="bulk routing: --n pending events dispatched this many per "
                         "transaction (default 50) instead of the interactive loop")
    ap.add_argument("--processes", type=int,
                    help="with --pg: also N app processes routing at once on that database")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.pg, args.n, args.start_at)
    if args.processes:
        if not args.pg:
            ap.error("--processes needs --pg")
        return 0 if run_processes(args.pg, args.n, args.processes) else 1
    if args.bulk:
        ok = True
        runs = [("SQLite", None)] * (not args.skip_sqlite) + [("PostgreSQL", args.pg)] * bool(args.pg)
        for label, pg in runs:
            with tempfile.TemporaryDirectory() as tmp:
                url = pg or f"sqlite:///{Path(tmp) / 'marshrut.sqlite3'}"
                ok &= run_bulk(label, url, args.n, args.bulk,
                               "all" if args.rules == "both" else args.rules)
        return 0 if ok else 1
    rule_sets = ("all", "large-deal") if args.rules == "both" else (args.rules,)
    runs = [("SQLite", None, r) for r in rule_sets if not args.skip_sqlite] + [
        ("PostgreSQL", args.pg, r) for r in rule_sets if args.pg]
    if args.one or len(runs) == 1:
        [(label, pg, rules)] = runs
        with tempfile.TemporaryDirectory() as tmp:
            url = pg or f"sqlite:///{Path(tmp) / 'marshrut.sqlite3'}"
            return 0 if run(label, url, Path(tmp) / "raw.sqlite3", args.n, args.blocks,
                            args.profile if pg is None else None, rules) else 1
    # Each run in a process of its own: nothing of one (caches, garbage) weighs on the next.
    ok = True
    for _label, pg, rules in runs:
        cmd = [sys.executable, __file__, "--one", "--n", str(args.n), "--blocks",
               str(args.blocks), "--rules", rules]
        cmd += ["--pg", pg, "--skip-sqlite"] if pg else []
        cmd += ["--profile", args.profile] if args.profile and not pg else []
        ok &= subprocess.run(cmd, check=False).returncode == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
