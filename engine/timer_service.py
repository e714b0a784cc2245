"""The ``timer`` table: kept in step with instances and schedules; claimed and fired when due.

Every method works in the caller's ``Session`` and never commits (``engine.scheduler`` runs
one transaction per claim and per fire).

Writing rows
  ``sync_instance`` — called by every instance save: one pending row per armed timer the
  workflow waits for; rows of timers that no longer wait (their task completed, the instance
  ended or was cancelled) become ``cancelled``.
  ``sync_schedules`` — called when a version is activated or deactivated: the active version
  has one pending row per timer start event (its next occurrence), other versions none.
Claiming (``claim``)
  One ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`` sets a lease
  (``locked_by``/``locked_until``) on due, unleased pending rows. PostgreSQL: workers skip each
  other's rows. SQLite: one writer at a time makes the statement atomic.
Firing (``fire``)
  Re-reads the row under a lock (the instance row first, as every other instance change does,
  so firing and completing a task never deadlock; on SQLite a write first, to hold the database
  lock before reading) and fires it only if it is still pending and leased to this worker —
  so a timer fires once even when a lease ran out and another worker took it over. An instance
  timer marks its waiting event fired and advances the instance; a schedule occurrence starts
  one instance (or one per selected record), then adds the next occurrence after *now*: after
  downtime a missed occurrence fires once, not once per missed period.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import timer_events, timer_scopes, timers
from .errors import EngineError
from .persistence import conflicts_guarded
from .ports import SelectionSpec, StartRequest
from .store import (
    ProcessDefinition,
    ProcessInstance,
    Status,
    Timer,
    TimerKind,
    TimerStatus,
)

if TYPE_CHECKING:
    from .executor import InstanceRun
    from .runtime import Engine

_TIMER_INSERT = Timer.__table__.insert()
#: ``session.info`` key: the earliest due time this transaction wrote (for waking schedulers).
WAKE_KEY = "marshrut_timer_wake"
FIRED, SKIPPED, CANCELLED, FAILED = "fired", "skipped", "cancelled", "failed"


@dataclass(frozen=True)
class ScheduleView:
    """A timer start event of an active definition, for the admin page."""

    definition_id: int
    definition_key: str
    definition_version: int
    definition_name: str
    element_id: str
    kind: str
    expression: str
    timezone: str
    select: dict[str, Any] | None
    next_due: dt.datetime | None
    last_fired_at: dt.datetime | None
    last_note: str | None


class TimerService:
    """The engine's timer bookkeeping (see the module docstring)."""

    def __init__(self, engine: Engine, *, max_attempts: int = 5) -> None:
        self.engine = engine
        self.max_attempts = max_attempts

    # ------------------------------------------------------------ instances
    def sync_instance(self, session: Session, run: InstanceRun, *, had_timers: bool) -> None:
        inst = run.instance
        wanted = {(p.task_id, p.element_id): p for p in [
            *timer_events.pending(run.wf), *timer_scopes.pending(run.wf)]}
        if not wanted and not had_timers:
            return  # the common case: a process without timers costs no query
        rows = []
        if had_timers:
            with session.no_autoflush:  # the instance is written once, by the final flush
                rows = session.scalars(select(Timer).where(
                    Timer.instance_id == inst.id, Timer.status == TimerStatus.PENDING)).all()
        kept = set()
        for row in rows:
            if row.status != TimerStatus.PENDING:
                continue  # closed in this unit of work (the timer being fired)
            p = wanted.get((row.spiff_task_id or "", row.element_id))
            if p is not None and p.due == row.due_at:
                kept.add((p.task_id, p.element_id))
            elif (row.spiff_task_id or "", row.element_id) in run.fired_timers:
                self._close(row, TimerStatus.FIRED, "fired with an earlier timer",
                            fired=(run.now, row.locked_by or "engine"))
            else:
                self._close(row, TimerStatus.CANCELLED, "no longer waited for")
        new = [{"kind": p.kind, "definition_id": inst.definition_id,
                "element_id": p.element_id, "instance_id": inst.id, "spiff_task_id": p.task_id,
                "expression": p.expression[:300], "due_at": p.due, "sequence": 0,
                "schedule_key": None, "status": TimerStatus.PENDING, "attempts": 0,
                "locked_by": None, "locked_until": None, "created_at": run.now,
                "fired_at": None, "fired_by": None, "note": None}
               for key, p in wanted.items() if key not in kept]
        if new:  # one Core INSERT for all of them, in the instance save's write phase
            session.connection().execute(_TIMER_INSERT, new)
            self._wake(session, min(row["due_at"] for row in new))

    def cancel_instance(self, session: Session, instance_id: int) -> None:
        """Cancel an instance's pending timers (when its state cannot even be loaded)."""
        session.execute(update(Timer).where(
            Timer.instance_id == instance_id, Timer.status == TimerStatus.PENDING).values(
            status=TimerStatus.CANCELLED, note="instance cancelled", locked_by=None,
            locked_until=None).execution_options(synchronize_session=False))

    # ------------------------------------------------------------ schedules
    def sync_schedules(self, session: Session, key: str) -> None:
        """The active version of ``key`` gets a pending occurrence per timer start event;
        the other versions' pending occurrences are cancelled."""
        now = self.engine.clock.now()
        for d in session.scalars(select(ProcessDefinition).where(ProcessDefinition.key == key)):
            wanted = {s["element_id"]: s for s in (d.schedules or [])} if d.active else {}
            rows = session.scalars(select(Timer).where(
                Timer.definition_id == d.id, Timer.kind == TimerKind.START,
                Timer.status == TimerStatus.PENDING)).all()
            have = set()
            for row in rows:
                if row.element_id in wanted:
                    have.add(row.element_id)
                else:
                    self._close(row, TimerStatus.CANCELLED, "the schedule was stopped")
            for element, schedule in wanted.items():
                if element in have:
                    continue
                spec = timers.TimerSpec.from_dict(schedule)
                first = timers.first_due(spec, now)
                if first is not None:
                    self._add_occurrence(session, d, spec, first[0], first[1], now)

    def _add_occurrence(self, session: Session, d: ProcessDefinition, spec: timers.TimerSpec,
                        due: dt.datetime, sequence: int, now: dt.datetime) -> None:
        key = f"{d.id}:{spec.element_id}:{due.astimezone(dt.UTC).isoformat()}"
        try:
            with session.begin_nested():  # the (definition, element, time) key is unique
                session.add(Timer(
                    kind=TimerKind.START, definition_id=d.id, element_id=spec.element_id,
                    instance_id=None, spiff_task_id=None, expression=spec.expression[:300],
                    due_at=due, sequence=sequence, schedule_key=key,
                    status=TimerStatus.PENDING, attempts=0, created_at=now))
                session.flush()
        except IntegrityError:
            return  # this occurrence exists already: it fires once
        self._wake(session, due)

    # ------------------------------------------------------------- claiming
    def claim(self, session: Session, worker: str, *, limit: int,
              lease: dt.timedelta) -> list[int]:
        """Lease up to ``limit`` due timers to ``worker``; their ids, earliest due first."""
        now = self.engine.clock.now()
        pick = (select(Timer.id).where(
            Timer.status == TimerStatus.PENDING, Timer.due_at <= now,
            or_(Timer.locked_until.is_(None), Timer.locked_until <= now))
            .order_by(Timer.due_at, Timer.id).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        rows = session.execute(
            update(Timer).where(Timer.id.in_(pick.scalar_subquery()))
            .values(locked_by=worker, locked_until=now + lease, attempts=Timer.attempts + 1)
            .returning(Timer.id, Timer.due_at)
            .execution_options(synchronize_session=False)).all()
        return [r.id for r in sorted(rows, key=lambda r: (r.due_at, r.id))]

    def next_due(self, session: Session) -> dt.datetime | None:
        """When a pending timer next becomes claimable (a leased one: when its lease ends)."""
        free = session.scalar(select(func.min(Timer.due_at)).where(
            Timer.status == TimerStatus.PENDING, Timer.locked_until.is_(None)))
        leased = session.scalar(select(func.min(Timer.locked_until)).where(
            Timer.locked_until.is_not(None), Timer.status == TimerStatus.PENDING))
        times = [t if t.tzinfo else t.replace(tzinfo=dt.UTC)
                 for t in (free, leased) if t is not None]
        return min(times) if times else None

    def release(self, session: Session, timer_id: int, worker: str, *, error: str | None,
                retry_at: dt.datetime) -> None:
        """After a fire failed: retry at ``retry_at``, or give up after ``max_attempts``."""
        row = session.get(Timer, timer_id)
        if row is None or row.status != TimerStatus.PENDING or row.locked_by != worker:
            return
        if error is not None:
            row.note = error[:2000]
        if row.attempts >= self.max_attempts:
            self._close(row, TimerStatus.FAILED, f"failed {row.attempts} times: {row.note}")
        else:
            row.locked_by, row.locked_until = None, retry_at

    # --------------------------------------------------------------- firing
    def fire(self, session: Session, timer_id: int, worker: str) -> str:
        """Fire a timer leased to ``worker`` (see the module docstring); returns fired,
        skipped (not ours, or not pending any more) or cancelled (it was stale). A race
        lost to another transaction on the instance raises ``Conflict`` (fire again)."""
        with conflicts_guarded():
            return self._fire(session, timer_id, worker)

    def _fire(self, session: Session, timer_id: int, worker: str) -> str:
        if session.get_bind().dialect.name == "sqlite":
            # Hold SQLite's write lock before reading, or a concurrent commit makes our
            # later write fail ("database is locked") after the reads.
            session.execute(update(Timer).where(Timer.id == timer_id)
                            .values(attempts=Timer.attempts)
                            .execution_options(synchronize_session=False))
        # The timer's instance (none for a schedule), locked first; one round trip.
        inst = session.execute(
            select(ProcessInstance).where(ProcessInstance.id == select(Timer.instance_id).where(
                Timer.id == timer_id).scalar_subquery()).with_for_update()
            .execution_options(populate_existing=True)).scalar_one_or_none()
        row = session.execute(select(Timer).where(Timer.id == timer_id).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one_or_none()
        if row is None or row.status != TimerStatus.PENDING or row.locked_by != worker:
            return SKIPPED
        if row.instance_id is not None and inst is None:
            return SKIPPED  # the instance is gone (and the row with it, once committed)
        now = self.engine.clock.now()
        if inst is not None:
            return self._fire_instance(session, row, inst, worker, now)
        return self._fire_schedule(session, row, worker, now)

    def _fire_instance(self, session: Session, row: Timer, inst: ProcessInstance, worker: str,
                       now: dt.datetime) -> str:
        if inst.status not in Status.OPEN:
            self._close(row, TimerStatus.CANCELLED, f"the instance is {inst.status}")
            return CANCELLED
        run = self.engine._load(session, inst)
        try:
            task = run.wf.get_task_from_id(UUID(row.spiff_task_id or ""))
        except Exception:  # noqa: BLE001 - the library raises its own not-found error
            task = None
        if row.kind == TimerKind.EVENT_SUBPROCESS:
            fired = timer_scopes.fire(run.wf, task, row.element_id, now)
        else:
            fired = timer_events.fire(task, row.element_id, now)
        if not fired:
            self._close(row, TimerStatus.CANCELLED, "no longer waited for")
            return CANCELLED
        self._close(row, TimerStatus.FIRED, None, fired=(now, worker))
        run.fired_timers.add((row.spiff_task_id or "", row.element_id))
        run.record("timer_fired", row.element_id,
                   f"timer fired (due {row.due_at.isoformat(timespec='seconds')})")
        run.advance()
        run.save()
        session.flush()
        return FIRED

    def _fire_schedule(self, session: Session, row: Timer, worker: str, now: dt.datetime) -> str:
        d = session.get(ProcessDefinition, row.definition_id)
        schedule = next((s for s in (d.schedules or []) if s["element_id"] == row.element_id),
                        None) if d is not None else None
        if d is None or schedule is None or not d.active:
            self._close(row, TimerStatus.CANCELLED, "the schedule was stopped")
            return CANCELLED
        self._close(row, TimerStatus.FIRED, None, fired=(now, worker))
        requests = [StartRequest(data={})]
        if schedule.get("select"):
            if self.engine.selector is None:
                raise EngineError("entity selection needs the CRM bridge (no selector)")
            requests = self.engine.selector.select(
                session, SelectionSpec.from_dict(schedule["select"]), now)
        started, failures = 0, []
        for request in requests:
            request.timer = row.element_id
            request.data = dict(request.data, timer={
                "element": row.element_id, "due_at": row.due_at.isoformat(),
                "fired_at": now.isoformat()})
            try:
                with session.begin_nested():
                    self.engine.start(session, d, request)
                started += 1
            except EngineError as exc:  # one record's failure does not stop the others
                failures.append(f"{request.entity_type} {request.entity_id}: {exc.message}")
        row.note = (f"started {started} instance{'s' if started != 1 else ''}"
                    + (f"; {len(failures)} failed: " + "; ".join(failures[:5])
                       if failures else ""))[:2000]
        spec = timers.TimerSpec.from_dict(schedule)
        nxt = timers.next_due(spec, row.due_at, row.sequence, now)
        if nxt is not None:
            self._add_occurrence(session, d, spec, nxt[0], nxt[1], now)
        # The row just fired is the schedule's "last fire"; older ones would only pile up.
        session.execute(delete(Timer).where(
            Timer.definition_id == d.id, Timer.element_id == row.element_id,
            Timer.kind == TimerKind.START, Timer.id != row.id,
            Timer.status.in_((TimerStatus.FIRED, TimerStatus.CANCELLED)))
            .execution_options(synchronize_session=False))
        session.flush()
        return FIRED

    # ---------------------------------------------------------------- views
    def upcoming(self, session: Session, *, limit: int = 100) -> list[Timer]:
        """Pending timers of instances, soonest first."""
        return list(session.scalars(select(Timer).where(
            Timer.status == TimerStatus.PENDING, Timer.kind != TimerKind.START)
            .order_by(Timer.due_at, Timer.id).limit(limit)))

    def failed(self, session: Session, *, limit: int = 50) -> list[Timer]:
        return list(session.scalars(select(Timer).where(Timer.status == TimerStatus.FAILED)
                                    .order_by(Timer.id.desc()).limit(limit)))

    def pending_count(self, session: Session) -> int:
        return session.scalar(select(func.count()).select_from(Timer).where(
            Timer.status == TimerStatus.PENDING)) or 0

    def schedules(self, session: Session) -> list[ScheduleView]:
        """Every timer start event of the active definitions, with its next and last fire."""
        out = []
        for d in session.scalars(select(ProcessDefinition).where(
                ProcessDefinition.active.is_(True)).order_by(ProcessDefinition.key)):
            for s in d.schedules or []:
                base = select(Timer).where(Timer.definition_id == d.id,
                                           Timer.kind == TimerKind.START,
                                           Timer.element_id == s["element_id"])
                nxt = session.scalars(base.where(Timer.status == TimerStatus.PENDING)
                                      .order_by(Timer.due_at).limit(1)).first()
                last = session.scalars(base.where(Timer.status == TimerStatus.FIRED)
                                       .order_by(Timer.fired_at.desc()).limit(1)).first()
                out.append(ScheduleView(
                    d.id, d.key, d.version, d.name, s["element_id"], s["kind"],
                    s["expression"], s["timezone"], s.get("select"),
                    nxt.due_at if nxt else None, last.fired_at if last else None,
                    last.note if last else None))
        return out

    # -------------------------------------------------------------- helpers
    @staticmethod
    def _close(row: Timer, status: str, note: str | None, *,
               fired: tuple[dt.datetime, str] | None = None) -> None:
        row.status = status
        row.locked_by = row.locked_until = None
        if note is not None:
            row.note = note[:2000]
        if fired is not None:
            row.fired_at, row.fired_by = fired

    @staticmethod
    def _wake(session: Session, due: dt.datetime) -> None:
        current = session.info.get(WAKE_KEY)
        if current is None or due < current:
            session.info[WAKE_KEY] = due
