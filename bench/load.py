"""Load benchmark: K concurrent HTTP clients for T seconds against Marshrut served exactly as
``make run`` serves it (gunicorn, gunicorn.conf.py) — on SQLite by default, on PostgreSQL with
``--pg URL`` (that database is emptied first).

The mix per client: create a deal (a third of them above the large-deal threshold, so routed
to the corporate manager), list deals, search deals, open the inbox, claim + complete a task
(the corporate manager's clients), and a Bitrix24 ``batch`` of 50 ``crm.deal.add``.

Prints requests/s, p50/p99 per endpoint and the error count (any status other than the
expected one), then checks that every acknowledged deal is in the database and that every
routed deal got exactly one task. Exit status 1 if any of that fails.

    .venv/bin/python bench/load.py --clients 50 --seconds 60
    .venv/bin/python bench/load.py --clients 50 --seconds 60 --pg postgresql+psycopg://postgres@127.0.0.1/bench
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import column, create_engine, select, table, text  # noqa: E402

from tests.runtime.server import flask_cli, request, start_server  # noqa: E402

THRESHOLD = 1_000_000


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def wipe_pg(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--pg", help="PostgreSQL URL (emptied first); default SQLite in a temp dir")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    ap.add_argument("--threads", type=int, default=8, help="threads per worker")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="marshrut-load-"))
    url = args.pg or f"sqlite:///{tmp / 'load.sqlite3'}"
    if args.pg:
        wipe_pg(url)
    flask_cli(url, "init-db", "--demo")
    who = ["manager1", "manager2", "corporate", "head"]
    tokens = {w: flask_cli(url, "create-token", f"{w}@demo.local").strip() for w in who}
    hook = flask_cli(url, "create-webhook", "manager1@demo.local").strip().splitlines()[-1]
    # The benchmark measures the server, not Bitrix24's per-webhook rate limit.
    server = start_server(url, tmp / "server.log", workers=args.workers, threads=args.threads,
                          MARSHRUT_BITRIX_RATE_PER_SECOND="10000",
                          MARSHRUT_BITRIX_RATE_BURST="100000")
    base = server.url
    hook_path = urllib.parse.urlsplit(hook).path.rstrip("/")
    print(f"server: gunicorn {args.workers}×{args.threads} on "
          f"{'PostgreSQL' if args.pg else 'SQLite'}; {args.clients} clients for {args.seconds}s")

    lat: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    samples: list[str] = []
    created: list[tuple[int, float]] = []  # (deal id, amount) acknowledged
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds

    def timed(name: str, method: str, path: str, token: str | None, body=None,
              ok=(200,)) -> tuple[int, object]:
        t0 = time.perf_counter()
        try:
            status, payload, _ = request(method, base + path, token, body)
        except Exception as exc:  # noqa: BLE001 - a transport failure is an error too
            status, payload = 0, f"{type(exc).__name__}: {exc}"
        dt = time.perf_counter() - t0
        with lock:
            lat[name].append(dt)
            if status not in ok:
                errors[f"{name} {status}"] += 1
                if len(samples) < 10:
                    samples.append(f"{name} {status} {str(payload)[:300]}")
        return status, payload

    def client(n: int) -> None:
        rnd = random.Random(n)
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            who_ = "manager1" if n % 2 else "manager2"
            r = rnd.random()
            if r < 0.35:
                amount = 1_500_000 if rnd.random() < 1 / 3 else rnd.randint(1000, 500_000)
                status, body = timed("create deal", "POST", "/api/v1/deals", tokens[who_],
                                     {"title": f"Нагрузка {n}-{i}", "amount": amount}, ok=(201,))
                if status == 201:
                    with lock:
                        created.append((body["id"], amount))
            elif r < 0.55:
                timed("list deals", "GET", "/api/v1/deals?per_page=20", tokens[who_])
            elif r < 0.65:
                q = urllib.parse.quote("Нагрузка")
                timed("search deals", "GET", f"/api/v1/deals?q={q}&per_page=20", tokens[who_])
            elif r < 0.80:
                timed("inbox", "GET", "/api/v1/tasks", tokens[rnd.choice(who)])
            elif r < 0.95:
                status, body = timed("inbox", "GET", "/api/v1/tasks", tokens["corporate"])
                items = body.get("items", []) if status == 200 and isinstance(body, dict) else []
                if items:
                    task = rnd.choice(items[:10])
                    # another client may have completed it first: 409 is a correct answer
                    timed("complete task", "POST", f"/api/v1/tasks/{task['id']}/complete",
                          tokens["corporate"], {"outcome": "reached"}, ok=(200, 409, 404))
            else:
                cmd = {f"c{k:02d}": "crm.deal.add?" + urllib.parse.urlencode(
                    {"fields[TITLE]": f"Пакет {n}-{i}-{k}", "fields[OPPORTUNITY]":
                     1_500_000 if k % 3 == 0 else 10_000}) for k in range(50)}
                status, body = timed("bitrix batch×50", "POST", hook_path + "/batch.json",
                                     None, {"halt": 0, "cmd": cmd})
                if status == 200 and isinstance(body, dict):
                    res = body.get("result", {})
                    errs = res.get("result_error") or {}
                    if errs:
                        with lock:
                            errors["bitrix batch×50 command"] += len(errs)
                            if len(samples) < 10:
                                samples.append(json.dumps(errs, ensure_ascii=False)[:300])
                    with lock:
                        for k, deal_id in (res.get("result") or {}).items():
                            created.append((int(deal_id), 1_500_000 if int(k[1:]) % 3 == 0
                                            else 10_000))

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    time.sleep(1.0)
    code = server.stop()

    total = sum(len(v) for v in lat.values())
    print(f"\n{total} requests in {wall:.1f}s = {total / wall:.1f} req/s; "
          f"errors: {sum(errors.values())}")
    print(f"{'endpoint':18} {'count':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for name in sorted(lat):
        v = lat[name]
        print(f"{name:18} {len(v):7} {statistics.median(v) * 1000:8.1f} "
              f"{percentile(v, 0.99) * 1000:8.1f}")
    for line, count in errors.most_common():
        print(f"  error: {line} ×{count}")
    for s in samples:
        print(f"  sample: {s}")

    # --- verification -----------------------------------------------------------------------
    engine = create_engine(url)
    ok = not errors and code == 0
    deal = table("deal", column("id"))
    task = table("process_task", column("entity_type"), column("entity_id"))
    with engine.connect() as conn:
        ids = [i for i, _ in created]
        found: set[int] = set()
        for k in range(0, len(ids), 500):
            found |= set(conn.scalars(select(deal.c.id).where(deal.c.id.in_(ids[k:k + 500]))))
        missing = len(set(ids) - found)
        large = [i for i, a in created if a > THRESHOLD]
        per_deal: Counter[int] = Counter()
        for k in range(0, len(large), 500):
            per_deal.update(conn.scalars(select(task.c.entity_id).where(
                task.c.entity_type == "deal", task.c.entity_id.in_(large[k:k + 500]))))
        unrouted = [i for i in large if per_deal[i] == 0]
        doubled = [i for i in large if per_deal[i] > 1]
        pending = conn.scalar(text("SELECT count(*) FROM outbox_event "
                                   "WHERE dispatched_at IS NULL"))
    engine.dispose()
    tracebacks = server.log.count("Traceback")
    print(f"\nacknowledged deals: {len(ids)}, missing in the database: {missing}")
    print(f"routed (large) deals: {len(large)}, without a task: {len(unrouted)}, "
          f"with more than one: {len(doubled)}; outbox events left pending: {pending}")
    print(f"server exit code after SIGTERM: {code}; tracebacks in its log: {tracebacks}")
    ok = ok and not missing and not unrouted and not doubled and not tracebacks
    print("RESULT:", "OK" if ok else "FAILED", f"(log: {tmp / 'server.log'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
