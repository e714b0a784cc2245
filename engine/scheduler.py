"""Firing due timers: :class:`TimerRunner` (one pass) and :class:`TimerScheduler` (the loop).

Due times live in the ``timer`` table only; APScheduler is just the alarm clock that wakes the
loop. The loop sleeps until the earliest due time (``TimerService.next_due``) or at most
``poll`` seconds (0.5 by default) — other processes may have added timers meanwhile — and is
woken early by :meth:`TimerScheduler.wake` when this process commits a timer due sooner, so a
timer fires within a fraction of a second of its due time.

One pass (``TimerRunner.run_due``): claim a batch of due timers (a lease, in its own short
transaction), fire each in its own transaction, repeat until nothing is due. Several workers
on PostgreSQL share the work and never fire one timer twice (see ``engine.timer_service``); a
worker killed mid-pass leaves leased rows that the others take over when the lease ends. A
fire that raises is retried after a pause growing with its attempts, and marked ``failed``
after ``TimerService.max_attempts``.

No Flask here: the web app (``web/scheduling.py``) and ``flask worker`` wire it, the tests
and the benchmark use it directly.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from .errors import Conflict
from .runtime import Engine
from .store import Timer
from .timer_service import FIRED, WAKE_KEY

log = logging.getLogger(__name__)
SessionFactory = Callable[[], Session]
JOB_ID = "marshrut-timers"
CONFLICT_DELAY = 0.5  # seconds before a timer that lost a race on its instance is retried


def default_worker_id() -> str:
    """host:pid — unique among running workers, readable on the admin page."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


@dataclass
class RunReport:
    claimed: int = 0
    fired: int = 0
    other: int = 0  # skipped (another worker's) or cancelled (stale)
    failed: int = 0


class TimerRunner:
    """Claims and fires due timers with ``engine`` over sessions of ``session_factory``."""

    def __init__(self, engine: Engine, session_factory: SessionFactory, *,
                 worker_id: str | None = None, lease: float = 60.0, batch: int = 50,
                 retry_delay: float = 5.0) -> None:
        self.engine = engine
        self.factory = session_factory
        self.worker_id = worker_id or default_worker_id()
        self.lease = dt.timedelta(seconds=lease)
        self.batch = batch
        self.retry_delay = retry_delay

    def run_due(self, *, max_batches: int | None = None) -> RunReport:
        """Fire everything due now (``max_batches`` bounds the passes, for tests)."""
        report = RunReport()
        batches = 0
        while max_batches is None or batches < max_batches:
            with self.factory() as session:
                ids = self.engine.timer_service.claim(session, self.worker_id,
                                                      limit=self.batch, lease=self.lease)
                session.commit()
            if not ids:
                break
            batches += 1
            report.claimed += len(ids)
            for timer_id in ids:
                self._fire(timer_id, report)
        return report

    def _fire(self, timer_id: int, report: RunReport) -> None:
        service = self.engine.timer_service
        error: str | None
        with self.factory() as session:
            try:
                outcome = service.fire(session, timer_id, self.worker_id)
                session.commit()
            except Conflict:
                session.rollback()  # the instance changed meanwhile: try again shortly
                error, delay = None, CONFLICT_DELAY
            except Exception as exc:  # noqa: BLE001 - one bad timer must not stop the others
                session.rollback()
                log.exception("firing timer %s failed", timer_id)
                error, delay = f"{type(exc).__name__}: {exc}", self.retry_delay
            else:
                if outcome == FIRED:
                    report.fired += 1
                else:
                    report.other += 1
                return
        report.failed += 1
        with self.factory() as session:
            row = session.get(Timer, timer_id)
            backoff = delay if error is None else delay * (row.attempts if row else 1)
            service.release(session, timer_id, self.worker_id, error=error,
                            retry_at=self.engine.clock.now() + dt.timedelta(seconds=backoff))
            session.commit()

    def next_due(self) -> dt.datetime | None:
        with self.factory() as session:
            return self.engine.timer_service.next_due(session)


@dataclass(frozen=True)
class PeriodicJob:
    """Housekeeping that runs every ``every`` seconds in each process running a scheduler
    (e.g. invoices past due become overdue). Several workers run it at once: ``fn`` must be
    safe with that — each change made under a row lock, re-checked after it is taken."""

    job_id: str
    fn: Callable[[], Any]
    every: float


class TimerScheduler:
    """Runs ``runner`` whenever a timer is due (see the module docstring), and the periodic
    jobs added with :meth:`add_periodic`."""

    def __init__(self, runner: TimerRunner, *, poll: float = 0.5) -> None:
        self.runner = runner
        self.poll = poll
        self.periodic: dict[str, PeriodicJob] = {}
        self._scheduler: BackgroundScheduler | None = None
        self._busy = threading.Lock()
        self._state = threading.Lock()

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def add_periodic(self, job_id: str, fn: Callable[[], Any], every: float) -> None:
        """Run ``fn`` every ``every`` seconds while the scheduler runs (first run at start);
        refuses a second job of the same id."""
        if job_id in self.periodic or job_id == JOB_ID:
            raise ValueError(f"periodic job {job_id} is added twice")
        if not every > 0:
            raise ValueError(f"periodic job {job_id}: the interval must be positive")
        self.periodic[job_id] = PeriodicJob(job_id, fn, float(every))

    def start(self) -> None:
        with self._state:
            if self.running:
                return
            # Two threads: a tick that finds the other one busy returns at once (the busy
            # one reschedules when it ends) instead of queueing or being skipped noisily.
            sched = BackgroundScheduler(
                timezone=dt.UTC, executors={"default": ThreadPoolExecutor(
                    2 + len(self.periodic))},
                job_defaults={"coalesce": True, "max_instances": 2,
                              "misfire_grace_time": None})
            # APScheduler logs every run at INFO — twice a second here; keep its warnings.
            quiet = logging.getLogger("apscheduler.executors.default")
            if quiet.level == logging.NOTSET:
                quiet.setLevel(logging.WARNING)
            sched.add_job(self._tick, IntervalTrigger(seconds=self.poll), id=JOB_ID,
                          next_run_time=dt.datetime.now(dt.UTC))
            for job in self.periodic.values():
                sched.add_job(self._periodic, IntervalTrigger(seconds=job.every),
                              args=(job,), id=job.job_id, max_instances=1,
                              next_run_time=dt.datetime.now(dt.UTC))
            sched.start()
            self._scheduler = sched

    def shutdown(self, wait: bool = True) -> None:
        with self._state:
            if self._scheduler is not None and self._scheduler.running:
                self._scheduler.shutdown(wait=wait)
            self._scheduler = None

    def wake(self, due: dt.datetime | None = None) -> None:
        """A timer due at ``due`` (default: now) was committed: tick by then."""
        sched = self._scheduler
        if sched is None or not sched.running:
            return
        now = dt.datetime.now(dt.UTC)
        at = max(due or now, now)
        job = sched.get_job(JOB_ID)
        if job is not None and (job.next_run_time is None or at < job.next_run_time):
            job.modify(next_run_time=at)

    @staticmethod
    def _periodic(job: PeriodicJob) -> None:
        try:
            job.fn()
        except Exception:  # noqa: BLE001 - the next run retries
            log.exception("periodic job %s failed", job.job_id)

    def _tick(self) -> None:
        if not self._busy.acquire(blocking=False):
            return  # the running tick reschedules when it ends
        nxt: dt.datetime | None = None
        try:
            nxt = self.runner.next_due()
            if nxt is not None and nxt <= self.runner.engine.clock.now():
                self.runner.run_due()
                nxt = self.runner.next_due()
        except Exception:  # noqa: BLE001 - the database may be back at the next tick
            log.exception("the timer scheduler's pass failed")
        finally:
            self._busy.release()
        if nxt is not None:
            # A due row we could not claim (another transaction holds it for a moment) must
            # not make the loop spin: look again a little later.
            self.wake(max(nxt, dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=20)))


def install_wakeup(session_factory: Any, scheduler: TimerScheduler) -> None:
    """Wake ``scheduler`` after every commit of ``session_factory`` that wrote a timer."""

    def _after_commit(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint: the transaction itself has not committed yet
        due = session.info.pop(WAKE_KEY, None)
        if due is not None:
            scheduler.wake(due)

    def _after_rollback(session: Session) -> None:
        if not session.in_nested_transaction():
            session.info.pop(WAKE_KEY, None)

    sa_event.listen(session_factory, "after_commit", _after_commit)
    sa_event.listen(session_factory, "after_rollback", _after_rollback)
