"""Lists at scale: the task inbox over 1,000,000 task rows and the deals list over 1,000,000
deals, through the functions the pages and the API call.

    .venv/bin/python bench/inbox.py [--sqlite PATH] [--pg postgresql+psycopg://…/db]
                                    [--tasks 1000000] [--deals 1000000] [--users 500]
                                    [--samples 500] [--keep] [--skip-sqlite]

Data (generated in chunks of 20,000 rows, written with Core ``executemany``): ``--users`` managers
(role "manager") and one administrator; ``--tasks`` rows in ``process_task`` (one instance
per 10 tasks), 8 % of them active (open, or claimed by one of their users: 1 in 10 of the
active ones), the rest completed or cancelled; 5 % are pool tasks offered to 5 users (their
``candidate_ids``, and while active their ``process_task_candidate`` rows when the schema has
that table); ``--deals`` deals in the default pipeline's stages, spread over the users and
two years. ``ANALYZE`` afterwards, as a database in service would have its statistics.

Measured, each call in a session of its own as a request has it: ``Engine.inbox`` for random
users (the whole inbox, as the home page and the overdue notices read it), ``Engine.inbox_page``
(what ``/inbox`` and ``GET /api/v1/tasks`` read: a first page with its count, and a second
page by cursor), and
``list_records`` for the deals list's first page as the page calls it (20 rows with the
total): the administrator filtering by responsible and stage sorted by date (newest first),
and a manager's own deals (their rights narrow them) in a stage, newest first. p50/p99/max
in milliseconds of wall time, and p50/p99 of the client's CPU time (steadier on a shared
machine). Targets: inbox p99 < 10 ms, deals list first page < 50 ms. ``--gc-freeze`` moves
the objects of start-up out of the cyclic collector's reach first (``gc.freeze()``, as a
server would after loading the app): the full collections that otherwise walk them every
few dozen calls are most of the p99.

``--pg URL`` EMPTIES that database. ``--sqlite PATH`` keeps the file (default: a temporary
one); with ``--keep`` an already filled database is measured again without refilling.
The code measured is the one imported: run with ``PYTHONPATH=<another checkout>`` to measure
that checkout on the same data shape (its own migrations build the schema).
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Table, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402

from automation.notifications import unread_count  # noqa: E402
from crm_models.db import make_engine  # noqa: E402
from crm_models.entities import Deal, Pipeline, Stage  # noqa: E402
from crm_models.org import Role, RoleGrant, User  # noqa: E402
from crm_models.permissions import actor_for  # noqa: E402
from crm_models.services.board import kanban_columns, stage_totals  # noqa: E402
from crm_models.services.feed import list_feed  # noqa: E402
from crm_models.services.records import list_records  # noqa: E402
from engine.store import (  # noqa: E402
    EngineBase,
    ProcessDefinition,
    ProcessInstance,
    ProcessTask,
)

CHUNK = 20_000
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def chunks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def write(conn: Connection, table: Table, rows: Iterator[dict[str, Any]]) -> int:
    """INSERT the rows with Core's executemany, a chunk at a time (SQLite: one prepared
    statement; psycopg: pipelined, no round trip per row)."""
    n = 0
    for batch in chunks(rows, CHUNK):
        conn.execute(insert(table), batch)
        n += len(batch)
    return n


# --- filling ---------------------------------------------------------------------------------

def fill(app: Any, *, tasks: int, deals: int, users: int, rng: random.Random) -> None:
    from crm_models.setup import ensure_reference_data

    factory = app.extensions["db_sessionmaker"]
    with factory() as s:
        ensure_reference_data(s)
        s.commit()
        manager_role = s.scalars(select(Role.id).where(Role.code == "manager")).one()
        admin_role = s.scalars(select(Role.id).where(Role.code == "admin")).one()
        stages = s.scalars(select(Stage.id).where(Stage.pipeline_id == 0)
                           .order_by(Stage.sort)).all()
    engine = app.extensions["db_engine"]
    t0 = time.perf_counter()
    with engine.begin() as conn:
        write(conn, User.__table__, ({
            "id": i, "email": f"user{i}@bench.local", "full_name": f"User {i}",
            "password_hash": "", "active": True, "locale": "ru", "timezone": "Europe/Moscow",
            "created_at": EPOCH} for i in range(1, users + 2)))
        grants = [{"role_id": manager_role, "user_id": i} for i in range(1, users + 1)]
        grants.append({"role_id": admin_role, "user_id": users + 1})
        write(conn, RoleGrant.__table__, iter(grants))
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('user_account', 'id'), "
                              ":n)"), {"n": users + 1})
    print(f"  {users + 1} users", flush=True)
    with engine.begin() as conn:
        n = write(conn, Deal.__table__, _deals(deals, users, stages, rng))
    print(f"  {n:,} deals in {time.perf_counter() - t0:.0f} s", flush=True)
    t1 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(ProcessDefinition.__table__).values(
            id=1, key="bench", version=1, name="Bench", bpmn_xml="", dmn_xml=[], specs={},
            triggers=[], manual_start=True, variables={}, priority=100, schedules=[],
            active=False, deployed_at=EPOCH))
        write(conn, ProcessInstance.__table__, ({
            "id": i, "definition_id": 1, "status": "waiting", "entity_type": "deal",
            "entity_id": i, "event_id": None, "state": None, "serializer_version": "1",
            "version": 1, "waiting": [], "started_at": EPOCH, "incident_attempts": 0}
            for i in range(1, tasks // 10 + 2)))
        candidates = EngineBase.metadata.tables.get("process_task_candidate")
        offers: list[dict[str, Any]] = []
        n = write(conn, ProcessTask.__table__, _tasks(tasks, users, deals, rng, offers))
        if candidates is not None:
            write(conn, candidates, iter(offers))
    print(f"  {n:,} tasks ({len(offers):,} candidate rows of active pool tasks"
          f"{'' if candidates is not None else ', no candidate table in this schema'}) in "
          f"{time.perf_counter() - t1:.0f} s", flush=True)
    t2 = time.perf_counter()
    with engine.begin() as conn:
        n = derive(conn)
    print(f"  {n[0]:,} feed items and {n[1]:,} notifications in "
          f"{time.perf_counter() - t2:.0f} s", flush=True)
    settle(engine)


def derive(conn: Connection) -> tuple[int, int]:
    """The feed and the bell, derived in the database from the rows above (INSERT … SELECT,
    no rows through Python): a "created" feed item per deal by its responsible, and a task
    notification per assigned task (read once the task was done)."""
    a = conn.execute(text(
        "INSERT INTO audit_event (at, actor_user_id, actor_label, entity_type, entity_id, "
        "action, changes, responsible_id) SELECT created_at, responsible_id, '', 'deal', id, "
        "'created', '{}', responsible_id FROM deal ORDER BY id")).rowcount
    b = conn.execute(text(
        "INSERT INTO notification (user_id, created_at, title, text, entity_type, entity_id, "
        "source_label, read_at, kind, task_id) SELECT assignee_id, created_at, name, '', "
        "entity_type, entity_id, '', CASE WHEN status IN ('open', 'claimed') THEN NULL "
        "ELSE completed_at END, 'task', id FROM process_task WHERE assignee_id IS NOT NULL "
        "ORDER BY id")).rowcount
    return a, b


def settle(engine: Any) -> None:
    """Statistics (and on PostgreSQL the visibility map autovacuum keeps, which index-only
    scans need) as a database in service has them."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        return
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    raw = engine.raw_connection()  # outside a transaction: fold the fill's log into the file
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def _deals(n: int, users: int, stages: list[int], rng: random.Random
           ) -> Iterator[dict[str, Any]]:
    span = (NOW - EPOCH).total_seconds()
    for i in range(1, n + 1):
        created = EPOCH + dt.timedelta(seconds=span * i / n)
        who = rng.randint(1, users)
        yield {"id": i, "title": f"Deal {i}", "pipeline_id": 0,
               "stage_id": stages[rng.randrange(len(stages))], "responsible_id": who,
               "created_by_id": who, "amount": rng.randint(1, 5_000_000),
               "currency": "RUB", "source": "", "opened": True, "comments": "",
               "search_text": f"deal {i}", "created_at": created, "updated_at": created}


def _tasks(n: int, users: int, deals: int, rng: random.Random,
           offers: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    span = (NOW - EPOCH).total_seconds()
    for i in range(1, n + 1):
        created = EPOCH + dt.timedelta(seconds=span * i / n)
        pool = rng.random() < 0.05
        cands = rng.sample(range(1, users + 1), 5) if pool else []
        assignee = None if pool else rng.randint(1, users)
        active = rng.random() < 0.08
        status, claimed_by, completed_by = "completed", None, None
        if active:
            status = "claimed" if rng.random() < 0.1 else "open"
            if status == "claimed":
                claimed_by = cands[0] if pool else assignee
            offers.extend({"user_id": u, "task_id": i} for u in cands)
        elif rng.random() < 0.1:
            status = "cancelled"
        else:
            completed_by = cands[0] if pool else assignee
        yield {"id": i, "instance_id": (i - 1) // 10 + 1, "spiff_task_id": f"{i:036d}",
               "element_id": "Task_call", "name": "Contact the client",
               "instructions": "Call the client about the deal", "form": [],
               "assignee_id": assignee, "candidate_ids": cands, "claimed_by": claimed_by,
               "assignment_note": "", "status": status, "priority": rng.choice((1, 2, 2, 3)),
               "due_at": created + dt.timedelta(hours=rng.randint(1, 72)),
               "created_at": created,
               "completed_at": None if active else created + dt.timedelta(hours=1),
               "completed_by": completed_by, "result": None if active else {},
               "entity_type": "deal", "entity_id": rng.randint(1, max(1, deals)),
               "definition_key": "bench"}


# --- measuring -------------------------------------------------------------------------------

def timed(factory: Any, samples: int, call: Callable[[Any, int], Any],
          pick: Callable[[], int]) -> tuple[list[float], list[float], int]:
    """(wall times, client CPU times — both ms — and rows returned in all)."""
    times, cpu, rows = [], [], 0
    for _ in range(samples):
        arg = pick()
        with factory() as s:
            t0, c0 = time.perf_counter(), time.process_time()
            got = call(s, arg)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            rows += len(got)
            s.rollback()
    return times, cpu, rows


def report(label: str, times: list[float], cpu: list[float], rows: int,
           target: float) -> bool:
    p99 = percentile(times, 99)
    ok = p99 < target
    print(f"  {label}: p50 {percentile(times, 50):.2f} ms, p99 {p99:.2f} ms, "
          f"max {max(times):.2f} ms, mean {statistics.fmean(times):.2f} ms; client CPU "
          f"p50 {percentile(cpu, 50):.2f} ms, p99 {percentile(cpu, 99):.2f} ms "
          f"({rows / len(times):.0f} rows each; target p99 < {target:g} ms: "
          f"{'met' if ok else 'NOT met'})")
    return ok


def measure(app: Any, users: int, samples: int, rng: random.Random, *,
            gc_freeze: bool = False) -> bool:
    factory = app.extensions["db_sessionmaker"]
    engine = app.extensions["engine"]
    with factory() as s:
        stages = s.scalars(select(Stage.code).where(Stage.pipeline_id == 0)
                           .where(Stage.semantics == "process")).all()
        admin = actor_for(s, s.get(User, users + 1))
        managers = {u: actor_for(s, s.get(User, u)) for u in rng.sample(
            range(1, users + 1), min(users, 50))}
        counts = s.execute(select(func.count()).select_from(ProcessTask)).scalar_one(), \
            s.execute(select(func.count()).select_from(Deal)).scalar_one()
    print(f"  {counts[0]:,} tasks, {counts[1]:,} deals; {samples} calls each")
    user = lambda: rng.randint(1, users)  # noqa: E731
    for _ in range(20):  # warm-up: connections, statement caches, planner
        with factory() as s:
            engine.inbox(s, user())
            list_records(s, admin, "deal", filters={"responsible_id": str(user())},
                         sort="-created_at", per_page=20)
    if gc_freeze:  # what a server would do once after start-up (see --gc-freeze)
        gc.collect()
        gc.freeze()
    ok = report("inbox (Engine.inbox)", *timed(factory, samples, engine.inbox, user), 10)
    if hasattr(engine, "inbox_page"):  # keyset pages (what /inbox, the API and Bitrix read)
        def first(s: Any, uid: int) -> list[Any]:
            return engine.inbox_page(s, uid, limit=25, scope="mine").tasks

        with factory() as s:  # where each user's second page of 10 starts
            cursors = {u: engine.inbox_page(s, u, limit=10).next for u in range(1, users + 1)}
        paged = [u for u, c in cursors.items() if c] or [1]

        def second(s: Any, uid: int) -> list[Any]:
            return engine.inbox_page(s, uid, limit=10, after=cursors[uid]).tasks

        ok &= report("inbox, first page of 25 of my tasks + count (the /inbox section)",
                     *timed(factory, samples, lambda s, u: first(s, u)
                            + [engine.inbox_count(s, u, scope="mine")], user), 10)
        ok &= report("inbox, a second page of 10 by cursor (Engine.inbox_page)",
                     *timed(factory, samples, second, lambda: rng.choice(paged)), 10)

    def by_admin(s: Any, uid: int) -> list[Any]:
        return list_records(s, admin, "deal", filters={
            "responsible_id": str(uid), "stage": rng.choice(stages)}, sort="-created_at",
            page=1, per_page=20).items

    def own(s: Any, uid: int) -> list[Any]:
        return list_records(s, managers[uid], "deal", filters={"stage": rng.choice(stages)},
                            sort="-created_at", page=1, per_page=20).items

    ok &= report("deals list, first page, responsible + stage by date (administrator)",
                 *timed(factory, samples, by_admin, user), 50)
    ok &= report("deals list, first page, my deals in a stage by date (manager)",
                 *timed(factory, samples, own, lambda: rng.choice(list(managers))), 50)

    def board(s: Any, who: Any) -> list[Any]:
        return kanban_columns(s, who, s.get(Pipeline, 0))

    def totals(s: Any, uid: int) -> list[Any]:
        return list(stage_totals(s, admin, 0).items())

    ok &= report("kanban column headers (count and sum per stage of 1,000,000 deals, "
                 "administrator)", *timed(factory, max(20, samples // 10), totals, user), 50)
    ok &= report("kanban board, headers + 50 cards per column (administrator)",
                 *timed(factory, max(20, samples // 10), lambda s, u: board(s, admin), user), 100)
    ok &= report("kanban board, headers + 50 cards per column (manager)",
                 *timed(factory, samples, lambda s, u: board(s, managers[u]),
                        lambda: rng.choice(list(managers))), 50)
    ok &= report("feed, newest 30 (administrator)",
                 *timed(factory, samples, lambda s, u: list_feed(s, admin), user), 50)
    ok &= report("feed, newest 30 (manager)",
                 *timed(factory, samples, lambda s, u: list_feed(s, managers[u]),
                        lambda: rng.choice(list(managers))), 50)
    ok &= report("notifications, unread count (the bell)",
                 *timed(factory, samples, lambda s, u: [unread_count(s, u)], user), 10)
    return ok


def run(label: str, url: str, args: argparse.Namespace) -> bool:
    from app import create_app
    from web.database import migrate

    rng = random.Random(12)
    filled = False
    if url.startswith("postgresql"):
        if not args.keep:
            wipe = make_engine(url)
            with wipe.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            wipe.dispose()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "RUN_SCHEDULER": False})
    migrate(app)
    with app.extensions["db_sessionmaker"]() as s:
        filled = (s.scalar(select(func.count()).select_from(User)) or 0) > args.users
    print(f"{label} ({url.split('@')[-1]})", flush=True)
    if not filled:
        t0 = time.perf_counter()
        fill(app, tasks=args.tasks, deals=args.deals, users=args.users, rng=rng)
        print(f"  filled in {time.perf_counter() - t0:.0f} s", flush=True)
    else:  # a database filled before the feed and the bell were part of the bench
        engine = app.extensions["db_engine"]
        with engine.begin() as conn:
            empty = not conn.scalar(text("SELECT count(*) FROM (SELECT 1 FROM audit_event "
                                         "LIMIT 1) AS a"))
            if empty:
                a, b = derive(conn)
                print(f"  {a:,} feed items and {b:,} notifications", flush=True)
        settle(engine)
    ok = measure(app, args.users, args.samples, rng, gc_freeze=args.gc_freeze)
    app.extensions["db_engine"].dispose()
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sqlite", help="SQLite file (kept; default: a temporary file)")
    ap.add_argument("--pg", help="also run on this PostgreSQL URL (its data is ERASED)")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--keep", action="store_true",
                    help="measure an already filled database again without refilling")
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--deals", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--gc-freeze", action="store_true",
                    help="gc.freeze() the start-up objects before measuring: without it, "
                         "the cyclic collector's full passes over the app's objects make "
                         "the long tail")
    args = ap.parse_args()
    ok = True
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            path = args.sqlite or str(Path(tmp) / "inbox.sqlite3")
            if not args.keep and args.sqlite and Path(path).exists():
                for suffix in ("", "-wal", "-shm"):
                    Path(path + suffix).unlink(missing_ok=True)
            ok &= run("SQLite", f"sqlite:///{path}", args)
    if args.pg:
        ok &= run("PostgreSQL", args.pg, args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
