"""Routing benchmark: N deals created through the service layer and routed by the shipped
processes, against a raw SpiffWorkflow loop on the same BPMN.

    .venv/bin/python bench/routing.py [--n 5000] [--pg postgresql+psycopg://…/db] [--profile]

Marshrut path, per deal, exactly as a request does it: ``create_deal`` as manager1 in a
session of the app's sessionmaker, ``commit()`` — whose after-commit hook dispatches the
``deal.created`` event: both shipped definitions start (each in its own transaction, with a
snapshot rebuilt from the database), the large-deal rule reassigns the deal to the
corporate-accounts manager through ``crm.assign_responsible`` (audit + outbox event, itself
dispatched), and the user task row is written. Every deal is above the threshold, so every
deal is routed; the run checks that N deals ended with the new responsible and N open tasks.

Raw loop, per deal: a workflow of the same BPMN parsed once by SpiffWorkflow's own
``BpmnParser`` (its service task is a no-op), plain ``PythonScriptEngine`` conditions, the
routing decision written into the task data, the state serialized without the spec (as the
engine stores it) and inserted with the task row into SQLite in one transaction. No CRM work.

Latency is event → task: from ``create_deal`` returning (the event is written) to ``commit()``
returning (the instance and its task are committed). ``--pg URL`` EMPTIES that database.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.parser import BpmnParser  # noqa: E402
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine  # noqa: E402
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer  # noqa: E402
from SpiffWorkflow.bpmn.specs.defaults import UserTask  # noqa: E402
from SpiffWorkflow.bpmn.specs.event_definitions.message import (  # noqa: E402
    MessageEventDefinition,
)
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

import crm_models  # noqa: E402,F401
from automation import models as _automation_models  # noqa: E402,F401
from automation.dispatcher import Dispatcher, install_after_commit  # noqa: E402
from automation.seed import PROCESSES_DIR, deploy_shipped  # noqa: E402
from automation.setup import build_engine  # noqa: E402
from crm_models.db import make_engine, make_sessionmaker  # noqa: E402
from crm_models.demo import load_demo  # noqa: E402
from crm_models.entities import Deal  # noqa: E402
from crm_models.org import User  # noqa: E402
from crm_models.permissions import actor_for  # noqa: E402
from crm_models.services import create_deal  # noqa: E402
from crm_models.setup import ensure_reference_data  # noqa: E402
from engine.store import ProcessTask  # noqa: E402

BPMN = PROCESSES_DIR / "large_deal_routing.bpmn"
WARMUP = 50


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


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- the Marshrut path ----------------------------------------------------------------------

def run_marshrut(url: str, n: int, profile: bool) -> dict[str, Any]:
    db_engine = make_engine(url)
    migrate(url, db_engine)
    factory = make_sessionmaker(db_engine)
    engine = build_engine()
    install_after_commit(factory, Dispatcher(engine, factory))
    with factory() as s:
        ensure_reference_data(s)
        load_demo(s)
        s.commit()
        deploy_shipped(s, engine)
        s.commit()
        manager = s.scalars(select(User).where(User.email == "manager1@demo.local")).one()
        corporate_id = s.scalars(select(User.id).where(User.email == "corporate@demo.local")
                                 ).one()
        actor = actor_for(s, manager)  # resolved once per request in the app, too
        before = s.scalar(select(func.count()).select_from(ProcessTask)) or 0

    def one(title: str) -> float:
        with factory() as s:
            create_deal(s, actor, title=title, amount="2500000.00")
            t0 = time.perf_counter()
            s.commit()  # … and the after-commit dispatch routes it
            return time.perf_counter() - t0

    for i in range(WARMUP):
        one(f"Warm-up deal {i}")
    prof = cProfile.Profile() if profile else None
    latencies: list[float] = []
    start = time.perf_counter()
    if prof:
        prof.enable()
    for i in range(n):
        latencies.append(one(f"Bench deal {i}"))
    if prof:
        prof.disable()
    elapsed = time.perf_counter() - start
    with factory() as s:
        routed = s.scalar(select(func.count()).select_from(Deal).where(
            Deal.title.like("Bench deal %"), Deal.responsible_id == corporate_id)) or 0
        tasks = (s.scalar(select(func.count()).select_from(ProcessTask)) or 0) - before
    db_engine.dispose()
    return {"elapsed": elapsed, "routed": routed, "tasks": tasks - WARMUP,
            "latencies": latencies, "profile": prof}


# --- the raw SpiffWorkflow loop --------------------------------------------------------------

class AttrDict(dict):
    """Dot access for plain ``eval`` conditions (``deal.amount``), still a dict for JSON."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def run_raw(n: int, dbfile: Path) -> dict[str, Any]:
    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec("large_deal_routing")
    serializer = BpmnWorkflowSerializer()
    script_engine = PythonScriptEngine()
    conn = sqlite3.connect(dbfile, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE instance (id INTEGER PRIMARY KEY, state TEXT)")
    conn.execute("CREATE TABLE task (id INTEGER PRIMARY KEY, instance_id INTEGER, "
                 "assignee TEXT, name TEXT)")

    def one(i: int) -> None:
        wf = BpmnWorkflow(spec, script_engine=script_engine)
        wf.task_tree.data.update({
            "deal": AttrDict(id=i, title=f"Raw {i}", amount=2500000, responsible_set_by=None,
                             responsible=AttrDict(id=4, email="manager1@demo.local")),
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
        state = serializer.to_dict(wf)
        state.pop("spec", None)
        state.pop("subprocess_specs", None)
        conn.execute("BEGIN")
        cur = conn.execute("INSERT INTO instance (state) VALUES (?)", (json.dumps(state),))
        conn.execute("INSERT INTO task (instance_id, assignee, name) VALUES (?, ?, ?)",
                     (cur.lastrowid, "corporate@demo.local", task.task_spec.bpmn_name))
        conn.execute("COMMIT")

    for i in range(WARMUP):
        one(-i)
    start = time.perf_counter()
    for i in range(n):
        one(i)
    elapsed = time.perf_counter() - start
    count = conn.execute("SELECT count(*) FROM task").fetchone()[0] - WARMUP
    conn.close()
    return {"elapsed": elapsed, "tasks": count}


def report(label: str, n: int, res: dict[str, Any], raw_rate: float) -> None:
    rate = n / res["elapsed"]
    lat = [v * 1000 for v in res["latencies"]]
    print(f"{label}: {n} deals in {res['elapsed']:.2f} s → {rate:,.0f} routed deals/s "
          f"({res['routed']} rerouted, {res['tasks']} tasks)")
    print(f"  event→task latency: p50 {percentile(lat, 50):.2f} ms, "
          f"p99 {percentile(lat, 99):.2f} ms, max {max(lat):.2f} ms, "
          f"mean {statistics.fmean(lat):.2f} ms")
    print(f"  ratio to the raw SpiffWorkflow loop: {rate / raw_rate:.2f}")
    if res["routed"] != n or res["tasks"] != n:
        print("  ERROR: not every deal was routed", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--pg", help="also run on this PostgreSQL URL (its data is ERASED)")
    ap.add_argument("--profile", action="store_true", help="profile the SQLite run")
    ap.add_argument("--sort", default="cumulative", help="profile order (cumulative, tottime)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = run_raw(args.n, Path(tmp) / "raw.sqlite3")
        raw_rate = args.n / raw["elapsed"]
        print(f"raw SpiffWorkflow loop: {args.n} workflows in {raw['elapsed']:.2f} s → "
              f"{raw_rate:,.0f} routed/s ({raw['tasks']} task rows)")
        res = run_marshrut(f"sqlite:///{Path(tmp) / 'marshrut.sqlite3'}", args.n, args.profile)
        report("Marshrut on SQLite", args.n, res, raw_rate)
        if res["profile"] is not None:
            pstats.Stats(res["profile"]).sort_stats(args.sort).print_stats(45)
    if args.pg:
        res = run_marshrut(args.pg, args.n, False)
        report("Marshrut on PostgreSQL", args.n, res, raw_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
