"""Import benchmark: rows/s of a CSV import of deals, routing included, and peak memory.

    .venv/bin/python bench/import.py [--n 100000] [--warmup 10000] [--large-every 10]
                                     [--chunk 200] [--pg postgresql+psycopg://…/db]

The app as ``make run`` builds it (``create_app`` + ``flask init-db --demo``: the shipped
routing rules deployed, the after-commit dispatcher on its sessionmaker). A CSV file of
``--n`` deals (Windows-1251, ``;``; every ``--large-every``-th deal above the large-deal
threshold) is imported by the import worker (``JobRunner``) exactly as the background thread
does it: a chunk of rows per transaction, each row through ``create_deal`` (rights,
validation, audit, outbox event), the chunk's events dispatched after its commit — every
``deal.created`` is matched against the active rules, and the large deals are reassigned and
get their task. The run checks that every large deal ended with the corporate manager.

Memory: a first import of ``--warmup`` rows sets the process's high-water mark; the peak
resident size (``ru_maxrss``) is printed after it and after the big import. Streaming keeps
the second close to the first whatever ``--n`` is. ``--pg URL`` EMPTIES that database.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402

from crm_models.db import make_engine  # noqa: E402
from crm_models.entities import Deal  # noqa: E402
from crm_models.org import User  # noqa: E402
from crm_models.permissions import actor_for  # noqa: E402
from integrations.imports.jobs import create_job, start_job  # noqa: E402
from integrations.imports.models import ImportJob  # noqa: E402
from integrations.imports.runner import JobRunner  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_csv(path: Path, n: int, large_every: int, tag: str) -> int:
    """The file, written a line at a time; the number of large deals in it."""
    large = 0
    with path.open("w", encoding="cp1251", newline="") as fh:
        fh.write("Название сделки;Сумма;Источник;Ответственный;Комментарий\r\n")
        for i in range(n):
            big = large_every and i % large_every == 0
            large += bool(big)
            amount = "2 500 000,00" if big else f"{10000 + i % 90000},50"
            fh.write(f"{tag} сделка {i};{amount};WEB;manager1@demo.local;"
                     f"Импорт из прайса, строка {i + 2}\r\n")
    return large


def run_import(app: object, file_dir: Path, name: str, chunk: int
               ) -> tuple[float, float, int]:
    factory = app.extensions["db_sessionmaker"]  # type: ignore[attr-defined]
    with factory() as s:
        admin = s.scalars(select(User).where(User.email == "admin@demo.local")).one()
        actor = actor_for(s, admin)
        job = create_job(s, actor, entity="deal", filename=name, file_dir=file_dir,
                         stored_name=name)
        start_job(s, actor, job, mapping=job.mapping, policy="create", dry_run=False)
        s.commit()
        job_id = job.id
    # as ``web.imports`` builds it: a chunk's events routed in bulk after its commit
    runner = JobRunner(factory, file_dir, chunk=chunk,
                       route=app.extensions["dispatcher"].dispatch)  # type: ignore[attr-defined]
    t0, c0 = time.perf_counter(), time.process_time()
    runner.run_once()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    with factory() as s:
        job = s.get(ImportJob, job_id)
        if job.status != "done" or job.failed:
            raise SystemExit(f"import {name}: {job.status} {job.message} failed={job.failed}")
        return elapsed, cpu, job.created


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--warmup", type=int, default=10_000)
    ap.add_argument("--large-every", type=int, default=10)
    ap.add_argument("--chunk", type=int, default=200)
    ap.add_argument("--pg", default=None)
    args = ap.parse_args()
    from app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        url = args.pg or f"sqlite:///{tmp_dir / 'bench.sqlite3'}"
        if url.startswith("postgresql"):
            wipe = make_engine(url)
            with wipe.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            wipe.dispose()
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "RUN_SCHEDULER": False})
        result = app.test_cli_runner().invoke(args=["init-db", "--demo"])
        if result.exit_code != 0:
            raise SystemExit(f"init-db failed: {result.output}")
        print(f"database: {app.extensions['db_engine'].dialect.name}, chunk {args.chunk} rows, "
              f"every {args.large_every}th deal large (routed)")
        print(f"peak RSS after start-up: {peak_mb():.0f} MB")
        write_csv(tmp_dir / "warm.csv", args.warmup, args.large_every, "Разогрев")
        secs, _cpu, created = run_import(app, tmp_dir, "warm.csv", args.chunk)
        print(f"warm-up: {created} rows in {secs:.1f} s = {created / secs:.0f} rows/s; "
              f"peak RSS {peak_mb():.0f} MB")
        large = write_csv(tmp_dir / "big.csv", args.n, args.large_every, "Бенч")
        size = (tmp_dir / "big.csv").stat().st_size / 1024 / 1024
        secs, cpu, created = run_import(app, tmp_dir, "big.csv", args.chunk)
        print(f"import: {created} rows ({size:.1f} MB file) in {secs:.1f} s = "
              f"{created / secs:.0f} rows/s (target >= 300 on SQLite, routing included); "
              f"{cpu:.1f} s CPU = {cpu / max(1, created) * 1000:.2f} ms CPU/row; "
              f"peak RSS {peak_mb():.0f} MB")
        factory = app.extensions["db_sessionmaker"]
        with factory() as s:
            corporate = s.scalars(select(User.id).where(
                User.email == "corporate@demo.local")).one()
            routed = s.scalar(select(func.count()).select_from(Deal).where(
                Deal.title.like("Бенч сделка %"), Deal.responsible_id == corporate)) or 0
        print(f"large deals routed to the corporate manager: {routed} of {large}")
        app.extensions["db_engine"].dispose()
        if routed != large:
            raise SystemExit("not every large deal was routed")


if __name__ == "__main__":
    main()
