"""Backtest at scale: a draft of the large-deal rule run on 10,000 recorded deal events.

    .venv/bin/python bench/backtest.py [--events 10000] [--routed 500] [--pg URL] [--runs 3]

The app as ``flask init-db --demo`` sets it up (demo org and data, shipped rules deployed) on a
temporary SQLite file (or ``--pg URL``, whose data is ERASED). ``--routed`` deals are created
and routed through the services as users create them (instances, tasks and audit rows in the
history); the rest of the ``--events`` ``deal.created`` events are written directly (deal rows and
their outbox events with the snapshot the service writes, amounts and managers spread out,
marked dispatched). Then ``automation.backtest.backtest`` runs the large-deal rule with its
threshold lowered to 400,000 over the last 30 days: wall and CPU seconds per run, the figures
of the report, and the target (10,000 events in under 10 s).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from crm_models.activity import OutboxEvent  # noqa: E402
from crm_models.db import make_engine  # noqa: E402
from crm_models.entities import Deal  # noqa: E402

LARGE = (ROOT / "processes" / "large_deal_routing.bpmn").read_text(encoding="utf-8")
DRAFT = LARGE.replace('name="threshold" type="decimal" value="1000000"',
                      'name="threshold" type="decimal" value="400000"')
CHUNK = 5_000


def seed(app: Any, events: int, routed: int, rng: random.Random) -> None:
    from crm_models.org import User
    from crm_models.permissions import actor_for
    from crm_models.services.crm import create_deal

    factory = app.extensions["db_sessionmaker"]
    amounts = ("50000", "300000", "500000", "900000", "2500000")
    t0 = time.perf_counter()
    with factory() as s:
        users = [u for u in s.scalars(select(User).order_by(User.id))
                 if u.email.startswith("manager")]
        actors = [actor_for(s, u) for u in users]
        managers = [(u.id, u.full_name) for u in users]
        for i in range(routed):  # routed after each commit, as the app does
            create_deal(s, rng.choice(actors), title=f"Routed {i}",
                        amount=rng.choice(amounts))
            s.commit()
        template = s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "deal.created")
                             .order_by(OutboxEvent.id.desc())).first()
        assert template is not None
        base = s.get(Deal, template.entity_id)
        assert base is not None
        fields, stage_id = dict(template.payload["fields"]), base.stage_id
        first = (s.scalar(select(func.max(Deal.id))) or 0) + 1
    print(f"  {routed} deals created and routed in {time.perf_counter() - t0:.1f} s",
          flush=True)
    t1 = time.perf_counter()
    engine = app.extensions["db_engine"]
    now = dt.datetime.now(dt.UTC)
    rest = events - routed
    with engine.begin() as conn:
        for start in range(0, rest, CHUNK):
            deals, outbox = [], []
            for n in range(start, min(rest, start + CHUNK)):
                did = first + n
                who_id, who_name = rng.choice(managers)
                amount = rng.choice(amounts)
                at = now - dt.timedelta(seconds=rng.randint(60, 20 * 86400))
                deals.append({"id": did, "title": f"Deal {did}", "pipeline_id": 0,
                              "stage_id": stage_id, "responsible_id": who_id,
                              "created_by_id": who_id, "amount": amount, "currency": "RUB",
                              "source": "", "opened": True, "comments": "",
                              "search_text": f"deal {did}", "created_at": at, "updated_at": at})
                outbox.append({"created_at": at, "event_type": "deal.created",
                               "entity_type": "deal", "entity_id": did,
                               "payload": {"fields": {**fields, "id": did,
                                                      "title": f"Deal {did}",
                                                      "amount": f"{amount}.00",
                                                      "responsible_id": who_id,
                                                      "created_by_id": who_id,
                                                      "created_at": at.isoformat(),
                                                      "updated_at": at.isoformat()}},
                               "actor_user_id": who_id, "actor_label": who_name,
                               "dispatched_at": at, "attempts": 0, "last_error": ""})
            conn.execute(insert(Deal.__table__), deals)
            conn.execute(insert(OutboxEvent.__table__), outbox)
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('deal', 'id'), "
                              "(SELECT max(id) FROM deal))"))
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    print(f"  {rest:,} more deal.created events written in {time.perf_counter() - t1:.1f} s",
          flush=True)


def run(label: str, url: str, args: argparse.Namespace) -> bool:
    from app import create_app
    from automation.backtest import backtest

    if url.startswith("postgresql"):
        wipe = make_engine(url)
        with wipe.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        wipe.dispose()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "RUN_SCHEDULER": False})
    result = app.test_cli_runner().invoke(args=["init-db", "--demo"])
    assert result.exit_code == 0, result.output
    print(f"{label} ({url.split('@')[-1]})", flush=True)
    seed(app, args.events, min(args.routed, args.events), random.Random(17))
    factory, engine = app.extensions["db_sessionmaker"], app.extensions["engine"]
    ok = True
    for i in range(args.runs):
        with factory() as s:
            t0, c0 = time.perf_counter(), time.process_time()
            report = backtest(s, engine, DRAFT, days=30)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            s.rollback()
        out = report.to_json()
        met = wall < 10 and out["events"] >= args.events
        ok &= met
        print(f"  run {i + 1}: {out['events']:,} events in {wall:.2f} s wall, {cpu:.2f} s CPU "
              f"({wall / max(1, out['events']) * 1000:.2f} ms/event); {out['changed']:,} would "
              f"go elsewhere in {len(out['groups'])} groups; target < 10 s: "
              f"{'met' if met else 'NOT met'}", flush=True)
    for g in out["groups"][:4]:
        names = lambda d: ", ".join(u["full_name"] for u in d.get("users", [])) or d.get(  # noqa: E731
            "element_id", "")
        print(f"    {g['count']} of {g['of']} {g['entity_type']}s would go to "
              f"{names(g['draft'])} instead of {names(g['actual'])}")
    app.extensions["db_engine"].dispose()
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--routed", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", help="also run on this PostgreSQL URL (its data is ERASED)")
    ap.add_argument("--skip-sqlite", action="store_true")
    args = ap.parse_args()
    ok = True
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            ok &= run("SQLite", f"sqlite:///{Path(tmp) / 'backtest.sqlite3'}", args)
    if args.pg:
        ok &= run("PostgreSQL", args.pg, args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
