"""Outbox → process instances: every CRM event starts the active definitions that listen to it.

Delivery contract:

* **Right away.** ``install_after_commit(sessionmaker, dispatcher)`` hooks SQLAlchemy's
  ``after_commit`` on the app's sessionmaker: when a session that wrote outbox events commits,
  those events are dispatched at once, in the same thread, before ``commit()`` returns. So the
  request that created a deal already sees the routing (new responsible, new task) — its
  session's objects are expired afterwards and reload the routed values. Chosen over a Flask
  ``after_request`` hook because that runs after the response is built, and because the CLI,
  imports and tests that use the same sessionmaker get the same behaviour for free.
* **In order, each in its own transaction.** An event's definitions start in (priority, key)
  order, each in a fresh transaction with a snapshot rebuilt from the database, so each sees
  what the ones before it did. A failure in one does not undo the others.
* **At most once.** ``process_instance`` has UNIQUE (event_id, definition_id): a definition
  that already started for an event (an earlier attempt, a racing dispatcher) is skipped.
* **At least once.** ``OutboxEvent.dispatched_at`` is set only after every definition has
  started; ``dispatch_pending`` (run at app start, periodically and by ``flask dispatch``)
  picks up whatever a crash, a failure or a disabled hook left behind.
* **No loops.** An event written by a process (its actor label is the process's, see
  ``automation.actors``) never starts a definition with that process's key, and a chain of
  process-caused events stops after ``max_cascade`` hops (the event is then marked dispatched
  with ``last_error`` saying why).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_models.activity import OutboxEvent
from crm_models.db import utcnow
from engine.errors import AlreadyStarted
from engine.ports import StartRequest
from engine.runtime import Engine
from engine.store import ProcessDefinition, ProcessInstance

from .actors import parse_process_label
from .snapshot import SnapshotError, event_data, start_data

log = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]
#: ``session.info`` keys: outbox ids flushed in the session; "do not dispatch this one".
OUTBOX_IDS = "marshrut_outbox_ids"
NO_DISPATCH = "marshrut_no_dispatch"
_DISPATCHER_SESSION = "marshrut_dispatcher"


@dataclass
class DispatchReport:
    """What one dispatch call did (for the CLI, logs and tests)."""

    events: int = 0
    started: list[int] = field(default_factory=list)  # instance ids
    skipped: list[str] = field(default_factory=list)  # "event 5: key (why)"
    failed: list[str] = field(default_factory=list)

    def merge(self, other: DispatchReport) -> None:
        self.events += other.events
        self.started += other.started
        self.skipped += other.skipped
        self.failed += other.failed


@dataclass(frozen=True)
class _Listener:
    id: int
    key: str
    version: int


def _collect_outbox_ids(session: Session, _flush_context: Any) -> None:
    """``after_flush``: remember the outbox events this session wrote (ids are known now)."""
    ids = [obj.id for obj in session.new if isinstance(obj, OutboxEvent)]
    if ids:
        session.info.setdefault(OUTBOX_IDS, []).extend(ids)


def _forget_outbox_ids(session: Session, previous_transaction: Any) -> None:
    """A rolled-back *root* transaction took its events with it (a savepoint's rollback
    does not undo what was flushed before the savepoint, so those ids stay)."""
    if previous_transaction.parent is None and not previous_transaction.nested:
        session.info.pop(OUTBOX_IDS, None)


def track_outbox(factory: Any) -> None:
    """Make sessions of ``factory`` (a sessionmaker) record the outbox ids they flush."""
    if not sa_event.contains(factory, "after_flush", _collect_outbox_ids):
        sa_event.listen(factory, "after_flush", _collect_outbox_ids)
        sa_event.listen(factory, "after_soft_rollback", _forget_outbox_ids)


class Dispatcher:
    """Starts process instances for outbox events (see the module docstring)."""

    def __init__(self, engine: Engine, session_factory: SessionFactory, *,
                 max_cascade: int = 5, max_attempts: int = 5, batch: int = 200) -> None:
        self.engine = engine
        self.session_factory = session_factory
        self.max_cascade = max_cascade
        self.max_attempts = max_attempts
        self.batch = batch
        self._local = threading.local()
        track_outbox(session_factory)

    # --- entry points ---------------------------------------------------------------------

    def dispatch(self, event_ids: Iterable[int]) -> DispatchReport:
        """Dispatch these events now, then the events their processes wrote, and so on."""
        report = DispatchReport()
        queue = sorted(set(event_ids))
        while queue:
            new_ids: list[int] = []
            for event_id in queue:
                try:
                    new_ids += self._dispatch_event(event_id, report)
                except Exception as exc:  # noqa: BLE001 - the event stays pending: retried
                    log.exception("dispatching outbox event %s failed", event_id)
                    report.failed.append(f"event {event_id}: {type(exc).__name__}: {exc}")
            queue = sorted(set(new_ids))
        return report

    def dispatch_pending(self, limit: int | None = None) -> DispatchReport:
        """The recovery loop: dispatch every undispatched event (oldest first) that has not
        failed ``max_attempts`` times. Safe to run anywhere, any time, concurrently."""
        report = DispatchReport()
        last_id = 0
        while limit is None or report.events < limit:
            with self._session() as s:
                ids = list(s.scalars(
                    select(OutboxEvent.id)
                    .where(OutboxEvent.dispatched_at.is_(None), OutboxEvent.id > last_id,
                           OutboxEvent.attempts < self.max_attempts)
                    .order_by(OutboxEvent.id).limit(self.batch)))
            if not ids:
                break
            last_id = ids[-1]
            if limit is not None:
                ids = ids[:limit - report.events]
            report.merge(self.dispatch(ids))
        return report

    @property
    def busy(self) -> bool:
        """True while this thread is inside a dispatch (the after-commit hook then waits)."""
        return bool(getattr(self._local, "depth", 0))

    # --- one event ------------------------------------------------------------------------

    def _session(self) -> Session:
        s = self.session_factory()
        s.info[_DISPATCHER_SESSION] = True
        return s

    def _dispatch_event(self, event_id: int, report: DispatchReport) -> list[int]:
        """Start each listening definition for one event; returns the outbox ids they wrote."""
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            return self._dispatch_event_inner(event_id, report)
        finally:
            self._local.depth -= 1

    def _dispatch_event_inner(self, event_id: int, report: DispatchReport) -> list[int]:
        with self._session() as s:
            self._lock_event(s, event_id)
            ev = s.get(OutboxEvent, event_id)
            if ev is None or ev.dispatched_at is not None:
                return []
            report.events += 1
            event_type, cause_label = ev.event_type, ev.actor_label
            listeners = self._listeners(s, event_type)
            depth = self._cascade_depth(s, cause_label) if listeners else 0
            if not listeners or depth >= self.max_cascade:
                note = "" if not listeners else (
                    f"not dispatched: {depth} processes in a row caused this event "
                    f"(limit {self.max_cascade}); check the definitions for a loop")
                if note:
                    report.skipped.append(f"event {event_id}: {note}")
                    log.warning("outbox event %s: %s", event_id, note)
                self._mark_dispatched(s, event_id, note)
                s.commit()
                return []
        cause = parse_process_label(cause_label)
        new_ids: list[int] = []
        ok = True
        for listener in listeners:
            if cause is not None and cause.key == listener.key:
                report.skipped.append(f"event {event_id}: {listener.key} (its own write)")
                continue
            result = self._start_one(event_id, listener, report)
            if result is None:
                ok = False
            else:
                new_ids += result
        if ok:
            with self._session() as s:
                self._mark_dispatched(s, event_id, "")
                s.commit()
        return new_ids

    def _start_one(self, event_id: int, listener: _Listener,
                   report: DispatchReport) -> list[int] | None:
        """Start one definition for one event in its own transaction; None on failure."""
        with self._session() as s:
            try:
                self._lock_event(s, event_id)
                if s.scalar(select(ProcessInstance.id).where(
                        ProcessInstance.event_id == event_id,
                        ProcessInstance.definition_id == listener.id)) is not None:
                    report.skipped.append(f"event {event_id}: {listener.key} (already started)")
                    return []
                definition = s.get(ProcessDefinition, listener.id)
                ev = s.get(OutboxEvent, event_id)
                if definition is None or not definition.active or ev is None:
                    return []  # deactivated (or the event vanished) since we looked
                data = self._start_data(s, ev)
                if data is None:
                    report.skipped.append(f"event {event_id}: {listener.key} "
                                          f"({ev.entity_type} {ev.entity_id} is gone)")
                    return []
                inst = self.engine.start(s, definition, StartRequest(
                    data=data, entity_type=ev.entity_type, entity_id=ev.entity_id,
                    event_id=ev.id, started_by=ev.actor_user_id, message=ev.event_type))
                s.commit()
                report.started.append(inst.id)
                return list(s.info.pop(OUTBOX_IDS, []))
            except (AlreadyStarted, IntegrityError):
                s.rollback()  # a concurrent dispatcher won: exactly one instance exists
                report.skipped.append(f"event {event_id}: {listener.key} (started elsewhere)")
                return []
            except Exception as exc:  # noqa: BLE001 - never lose the event; record and go on
                s.rollback()
                message = f"{listener.key}: {type(exc).__name__}: {exc}"
                log.exception("dispatching outbox event %s to %s failed", event_id,
                              listener.key)
                report.failed.append(f"event {event_id}: {message}")
                self._record_failure(event_id, message)
                return None

    @staticmethod
    def _start_data(s: Session, ev: OutboxEvent) -> dict[str, Any] | None:
        try:
            return start_data(s, ev.entity_type, ev.entity_id, ev)
        except SnapshotError:
            fields = (ev.payload or {}).get("fields") if isinstance(ev.payload, dict) else None
            if not isinstance(fields, dict):
                return None
            # ``<entity>.deleted``: the row is gone, its last fields travel in the payload.
            return {ev.entity_type: fields, "event": event_data(ev, ev.entity_type,
                                                                ev.entity_id)}

    def _listeners(self, s: Session, event_type: str) -> list[_Listener]:
        """Active definitions started by ``event_type``, in (priority, key) order. Reads only
        the columns it needs (not the stored specs) since it runs for every event."""
        rows = s.execute(select(ProcessDefinition.id, ProcessDefinition.key,
                                ProcessDefinition.version, ProcessDefinition.priority,
                                ProcessDefinition.triggers)
                         .where(ProcessDefinition.active.is_(True)))
        found = [(prio, key, _Listener(id_, key, version))
                 for id_, key, version, prio, triggers in rows if event_type in (triggers or ())]
        return [item[2] for item in sorted(found, key=lambda x: (x[0], x[1]))]

    def _cascade_depth(self, s: Session, label: str) -> int:
        """How many process hops led to an event written under ``label``."""
        depth = 0
        seen: set[int] = set()
        cause = parse_process_label(label)
        while cause is not None and depth <= self.max_cascade and cause.instance_id not in seen:
            seen.add(cause.instance_id)
            depth += 1
            event_id = s.scalar(select(ProcessInstance.event_id)
                                .where(ProcessInstance.id == cause.instance_id))
            if event_id is None:
                break
            cause = parse_process_label(s.scalar(select(OutboxEvent.actor_label)
                                                 .where(OutboxEvent.id == event_id)))
        return depth

    @staticmethod
    def _lock_event(s: Session, event_id: int) -> None:
        """Write first: a no-op UPDATE of the event row. On PostgreSQL it locks the row, so a
        second dispatcher of the same event waits and then finds the instance; on SQLite the
        transaction takes the write lock up front (waiting its turn) instead of failing later
        when a read snapshot turns out stale."""
        s.execute(update(OutboxEvent).where(OutboxEvent.id == event_id)
                  .values(attempts=OutboxEvent.attempts))

    @staticmethod
    def _mark_dispatched(s: Session, event_id: int, note: str) -> None:
        values: dict[str, Any] = {"dispatched_at": utcnow()}
        if note:
            values["last_error"] = note
        s.execute(update(OutboxEvent).where(OutboxEvent.id == event_id,
                                            OutboxEvent.dispatched_at.is_(None))
                  .values(**values))

    def _record_failure(self, event_id: int, message: str) -> None:
        with self._session() as s:
            s.execute(update(OutboxEvent).where(OutboxEvent.id == event_id)
                      .values(attempts=OutboxEvent.attempts + 1, last_error=message[:4000]))
            s.commit()


def install_after_commit(factory: Any, dispatcher: Dispatcher) -> None:
    """Dispatch the outbox events of every session of ``factory`` right after it commits.

    A session with ``session.info[NO_DISPATCH]`` set is left to the recovery loop. Errors are
    logged, never raised: the caller's commit has succeeded and ``dispatch_pending`` retries.
    """
    track_outbox(factory)

    def _after_commit(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint was released: the outer transaction has not committed yet
        if session.info.get(_DISPATCHER_SESSION):
            return  # the dispatcher collects its own sessions' events
        ids = session.info.pop(OUTBOX_IDS, None)
        if not ids or session.info.get(NO_DISPATCH):
            return
        if dispatcher.busy:
            return  # a process's own session inside a dispatch: the dispatch loop takes them
        try:
            dispatcher.dispatch(ids)
        except Exception:  # noqa: BLE001 - the recovery loop will pick the events up
            log.exception("dispatching outbox events %s after commit failed", ids)
        # The processes may have changed rows this session holds: reload them on next access.
        session.expire_all()

    sa_event.listen(factory, "after_commit", _after_commit)


def dispatch_pending(session_factory: SessionFactory, engine: Engine,
                     limit: int | None = None) -> DispatchReport:
    """The recovery loop as a function (see ``Dispatcher.dispatch_pending``)."""
    return Dispatcher(engine, session_factory).dispatch_pending(limit)
