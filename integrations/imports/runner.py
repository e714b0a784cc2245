"""Running import jobs in the background: claimed under a lease, processed a chunk per
transaction, resumable after a crash.

A job row is claimed by one worker with a conditional UPDATE (only a job nobody holds, or
whose holder's lease ran out, can be taken), so several workers — threads or processes, on
SQLite or PostgreSQL — never run the same job at once. Each chunk of rows commits its
records (through the CRM services: rights, validation, audit and outbox events), its row
errors, the job's counters and its ``position`` in one transaction, renewing the lease in
the same UPDATE; a worker that lost its lease writes nothing. After a crash or a restart the
job is taken again once its lease runs out and goes on from ``position``: no row is imported
twice. The outbox events a chunk committed are routed as any other commit's are (the app's
after-commit dispatch, or the recovery loop); a dry run writes no records and no events.

With ``route`` (the app passes its dispatcher's ``dispatch``), a chunk is written with the
after-commit dispatch off and its events are handed to ``route`` in one call right after the
commit: routed in bulk (``per_transaction`` events to a transaction, each in a savepoint).
Every imported record is routed exactly once (the dispatcher starts a definition at most once
per event); a crash between the commit and the routing loses nothing: the events stay
undispatched and the recovery loop (``dispatch_pending``) routes them.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from crm_models.catalog import Product
from crm_models.db import lock_failure, utcnow
from crm_models.errors import CrmError, PermissionDenied, ValidationFailed
from crm_models.org import User
from crm_models.permissions import Actor, actor_for
from crm_models.services import records
from crm_models.services.catalog import create_product, update_product
from crm_models.services.duplicates import candidates

from .mapping import Lookups, column_of, row_data
from .models import ImportJob, ImportRowError
from .reader import FileProblem, TableFormat, count_rows, rows

log = logging.getLogger(__name__)
NO_DISPATCH = "marshrut_no_dispatch"  # automation.dispatcher.NO_DISPATCH (no import: layering)
OUTBOX_IDS = "marshrut_outbox_ids"  # automation.dispatcher.OUTBOX_IDS: (id, type, label) flushed
MAX_STORED_ERRORS = 10_000
_SPLIT = re.compile(r"[;,\n]")


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def job_path(file_dir: Path, job: ImportJob) -> Path:
    return file_dir / job.stored_name


class JobRunner:
    """Claims and runs import jobs. ``factory(write=True)`` gives a writing session."""

    def __init__(self, factory: Callable[..., Session], file_dir: Path, *,
                 worker_id: str | None = None, lease: float = 120.0, chunk: int = 200,
                 clock: Callable[[], dt.datetime] = utcnow,
                 route: Callable[[list[int]], Any] | None = None) -> None:
        """``route``: called with the outbox ids a chunk committed, right after its commit
        (see the module docstring); None leaves them to the factory's after-commit hook."""
        self.factory = factory
        self.route = route
        self.file_dir = Path(file_dir)
        self.worker_id = worker_id or default_worker_id()
        self.lease = lease
        self.chunk = chunk
        self.clock = clock

    # --- claiming -----------------------------------------------------------------------

    def claim(self) -> int | None:
        """Take one runnable job (queued, or running with an expired lease); its id or None.
        Looked for with a reader (no write lock while idle), taken with a conditional UPDATE."""
        now = self.clock()
        runnable = (ImportJob.status.in_(("queued", "running")),
                    or_(ImportJob.lease_until.is_(None), ImportJob.lease_until < now))
        with self.factory() as s:
            ids = list(s.scalars(select(ImportJob.id).where(*runnable)
                                 .order_by(ImportJob.id).limit(5)))
        if not ids:
            return None
        with self.factory(write=True) as s:
            for job_id in ids:
                taken = s.execute(update(ImportJob).where(ImportJob.id == job_id, *runnable)
                                  .values(status="running", claimed_by=self.worker_id,
                                          lease_until=now + dt.timedelta(seconds=self.lease))
                                  .execution_options(synchronize_session=False)).rowcount
                if taken == 1:
                    s.commit()
                    return job_id
            s.rollback()
        return None

    def run_once(self) -> int | None:
        """Claim a job and run it to its end (or until the lease is lost); its id or None."""
        job_id = self.claim()
        if job_id is not None:
            self.run(job_id)
        return job_id

    # --- running ------------------------------------------------------------------------

    def run(self, job_id: int, *, max_chunks: int | None = None) -> None:
        """Process the claimed job chunk by chunk (``max_chunks``: stop after that many, as
        a crash would — tests use it)."""
        with self.factory() as s:
            job = s.get(ImportJob, job_id)
            if job is None or job.claimed_by != self.worker_id:
                return
            fmt = TableFormat(job.file_format, job.encoding, job.delimiter)
            path, position = job_path(self.file_dir, job), job.position
            entity, total = job.entity, job.total_rows
        try:
            if total is None:
                self._set_total(job_id, count_rows(path, fmt))
            it = rows(path, fmt)
            next(it, None)  # the header
            data_rows: Iterator[tuple[int, list[str]]] = islice(it, position, None)
            done = 0
            while max_chunks is None or done < max_chunks:
                chunk = list(islice(data_rows, self.chunk))
                if not self._chunk(job_id, entity, chunk, finished=len(chunk) < self.chunk):
                    return
                done += 1
                if len(chunk) < self.chunk:
                    return
        except FileProblem as exc:
            self._fail(job_id, exc.message, row=exc.row)
        except FileNotFoundError:
            self._fail(job_id, "the uploaded file is gone")

    def _set_total(self, job_id: int, total: int) -> None:
        with self.factory(write=True) as s:
            s.execute(update(ImportJob).where(ImportJob.id == job_id).values(total_rows=total)
                      .execution_options(synchronize_session=False))
            s.commit()

    def _actor(self, s: Session, job: ImportJob) -> Actor:
        user = s.get(User, job.user_id) if job.user_id else None
        if user is None:
            raise PermissionDenied("the user who started this import no longer exists")
        actor = actor_for(s, user)
        actor.require(job.entity, "import")
        return actor

    def _chunk(self, job_id: int, entity: str, chunk: list[tuple[int, list[str]]], *,
               finished: bool) -> bool:
        """One transaction: the rows, their errors, the counters. False: stop running."""
        for _attempt in range(3):
            try:
                return self._chunk_once(job_id, entity, chunk, finished=finished)
            except Exception as exc:
                if lock_failure(exc) is None:
                    raise
                log.warning("import job %s: chunk retried after %s", job_id, exc)
        return False

    def _chunk_once(self, job_id: int, entity: str, chunk: list[tuple[int, list[str]]], *,
                    finished: bool) -> bool:
        with self.factory(write=True) as s:
            job = s.get(ImportJob, job_id)
            if job is None or job.claimed_by != self.worker_id or job.finished:
                return False
            try:
                actor = self._actor(s, job)
            except CrmError as exc:
                s.rollback()
                self._fail(job_id, str(exc))
                return False
            if job.dry_run or self.route is not None:
                s.info[NO_DISPATCH] = True  # a dry run writes none; else routed below, in bulk
            lookups = Lookups.load(s)
            counts = {"created": 0, "updated": 0, "skipped": 0, "failed": 0}
            errors: list[dict[str, Any]] = []
            dry = s.begin_nested() if job.dry_run else None
            for number, cells in chunk:
                try:
                    with s.begin_nested():
                        outcome = self._row(s, actor, job, cells, lookups)
                    counts[outcome] += 1
                except ValidationFailed as exc:
                    counts["failed"] += 1
                    errors.extend({"row": number,
                                   "column": column_of(job.mapping, job.headers, name),
                                   "message": message} for name, message in exc.fields.items())
                except CrmError as exc:
                    counts["failed"] += 1
                    errors.append({"row": number, "column": "", "message": str(exc)})
            if dry is not None:
                dry.rollback()
            stored = s.scalar(select(ImportRowError.id).where(
                ImportRowError.job_id == job_id).offset(MAX_STORED_ERRORS - 1).limit(1))
            if errors and stored is None:
                s.execute(ImportRowError.__table__.insert(),
                          [{"job_id": job_id, **e} for e in errors])
            values: dict[str, Any] = {
                "position": ImportJob.position + len(chunk),
                **{k: getattr(ImportJob, k) + v for k, v in counts.items()},
                "lease_until": self.clock() + dt.timedelta(seconds=self.lease)}
            if finished:
                values.update(status="done", finished_at=self.clock(), lease_until=None)
            kept = s.execute(update(ImportJob).where(
                ImportJob.id == job_id, ImportJob.claimed_by == self.worker_id,
                ImportJob.status == "running").values(**values)
                .execution_options(synchronize_session=False)).rowcount
            if kept != 1:  # the lease was lost (or the job cancelled): nothing of this chunk
                s.rollback()
                return False
            # ids of rows rolled back to their savepoint may be among them: the dispatcher
            # skips an id with no pending event
            events = [] if job.dry_run else [e[0] for e in s.info.get(OUTBOX_IDS, ())]
            s.commit()
        if events and self.route is not None:
            try:
                self.route(events)
            except Exception:  # noqa: BLE001 - committed: the recovery loop routes them
                log.exception("import job %s: routing %d events failed", job_id, len(events))
        return True

    def _row(self, s: Session, actor: Actor, job: ImportJob, cells: list[str],
             lookups: Lookups) -> str:
        data = row_data(job.entity, job.mapping, cells, lookups)
        if job.entity == "product":
            return self._product(s, actor, job.policy, data)
        match = None
        if job.entity in ("contact", "company", "lead") and job.policy != "create":
            found = candidates(s, actor, job.entity, phones=_split(data.get("phones")),
                               emails=_split(data.get("emails")), inn=data.get("inn"),
                               limit=1)
            match = found[0].record if found else None
        if match is not None:
            if job.policy == "skip":
                return "skipped"
            records.update(s, actor, job.entity, match.id, data)
            return "updated"
        records.create(s, actor, job.entity, data)
        return "created"

    @staticmethod
    def _product(s: Session, actor: Actor, policy: str, data: dict[str, Any]) -> str:
        sku = str(data.get("sku") or "").strip()
        match = s.scalar(select(Product.id).where(Product.sku == sku).limit(1)) \
            if sku and policy != "create" else None
        if match is not None:
            if policy == "skip":
                return "skipped"
            update_product(s, actor, match, **data)
            return "updated"
        create_product(s, actor, **data)
        return "created"

    def _fail(self, job_id: int, message: str, *, row: int | None = None) -> None:
        with self.factory(write=True) as s:
            s.execute(update(ImportJob).where(ImportJob.id == job_id).values(
                status="failed", message=message[:2000], finished_at=self.clock(),
                lease_until=None).execution_options(synchronize_session=False))
            if row is not None:
                s.add(ImportRowError(job_id=job_id, row=row, column="", message=message))
            s.commit()


def _split(value: Any) -> list[str]:
    if not value:
        return []
    return [v.strip() for v in _SPLIT.split(str(value)) if v.strip()]


class ImportWorker:
    """A daemon thread running :class:`JobRunner` jobs as they are queued."""

    def __init__(self, runner: JobRunner, *, poll: float = 1.0) -> None:
        self.runner = runner
        self.poll = poll
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name="marshrut-imports",
                                           daemon=True)
            self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                while not self.stop_event.is_set() and self.runner.run_once() is not None:
                    pass
            except Exception:  # noqa: BLE001 - keep the worker alive; the lease lets it retry
                log.exception("the import worker failed")
            self.wake.wait(self.poll)
            self.wake.clear()
