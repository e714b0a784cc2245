"""Routing benchmark: N deals created through the service layer and routed by the shipped
processes, against a raw SpiffWorkflow loop on the same BPMN.

    .venv/bin/python bench/routing.py [--n 5000] [--pg postgresql+psycopg://…/db]
                                      [--rules all|large-deal|both] [--profile tottime]

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
Latency is event → task: from ``create_deal`` returning (the event is written) to ``commit()``
returning (the instance and its task are committed). ``--pg URL`` EMPTIES that database.
"""
from __future__ import annotations

import argparse
import cProfile
import json
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

    def __init__(self, url: str, rules: str = "all") -> None:
        from app import create_app

        if url.startswith("postgresql"):
            wipe = make_engine(url)
            with wipe.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            wipe.dispose()
        # The embedded scheduler thread stays off (nothing falls due during a run); its
        # wake-up hook is installed all the same, as in every app process.
        self.app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench",
                               "RUN_SCHEDULER": False})
        result = self.app.test_cli_runner().invoke(args=["init-db", "--demo"])
        if result.exit_code != 0:
            raise SystemExit(f"init-db failed: {result.output}")
        self.db_engine = self.app.extensions["db_engine"]
        self.factory = self.app.extensions["db_sessionmaker"]
        with self.factory() as s:
            if rules == "large-deal":
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
            environment=TaskDataEnvironment({"decimal": Decimal}))
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
        pstats.Stats(prof).sort_stats(profile).print_stats(45)
    ok = routed == n and tasks == n and raw_tasks == n
    if not ok:
        print("  ERROR: not every deal was routed", file=sys.stderr)
    return ok


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
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
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
