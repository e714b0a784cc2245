"""Outbox → process instances: every CRM event starts the active definitions that listen to it.

Delivery contract:

* **Right away.** ``install_after_commit(sessionmaker, dispatcher)`` hooks SQLAlchemy's
  ``after_commit`` on the app's sessionmaker: when a session that wrote outbox events commits,
  those events are dispatched at once, in the same thread, before ``commit()`` returns. So the
  request that created a deal already sees the routing (new responsible, new task) — its
  session's objects are expired afterwards and reload the routed values. Chosen over a Flask
  ``after_request`` hook because that runs after the response is built, and because the CLI,
  imports and tests that use the same sessionmaker get the same behaviour for free.
* **In order, in one transaction.** An event's definitions start in (priority, key) order in
  one transaction, each in its own savepoint, so a failure in one undoes only that one; the
  start data are rebuilt from the database after a definition wrote to the CRM, so each sees
  what the ones before it did. The event is marked dispatched in the same commit.
* **Bulk.** Several pending events (the recovery loop, ``dispatch_pending``, a ``deferred()``
  block such as a Bitrix ``batch``) go ``per_transaction`` (default 50) to a transaction,
  each event in a savepoint of its own: a failing event rolls back only its own starts and
  is recorded (attempts + 1, its error) in the same commit; a transaction lost as a whole
  (lock, connection) is run again one event per transaction. A single event (a request's
  commit) keeps a transaction of its own.
* **Pre-filtered starts.** A definition whose start condition cannot match the event
  (``engine.prefilter``) is started by ``Engine.start_if_filtered`` without running its
  workflow and without a savepoint (it writes no CRM data); an event a process wrote that
  only that process listens to (the routing's own ``deal.updated``) is marked dispatched in
  the transaction that wrote it.
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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from crm_models.activity import OutboxEvent
from crm_models.db import lock_failure, utcnow
from crm_models.services.rows import add_outbox_listener
from engine.correlation import wants
from engine.errors import AlreadyStarted
from engine.ports import StartRequest
from engine.runtime import Engine
from engine.store import ProcessDefinition, ProcessInstance

from .actors import parse_process_label
from .snapshot import SnapshotError, event_data, preload, start_data

log = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]
#: ``session.info`` keys: (id, event type) of the outbox events flushed in the session;
#: "do not dispatch this one".
OUTBOX_IDS = "marshrut_outbox_ids"
NO_DISPATCH = "marshrut_no_dispatch"
_DISPATCHER_SESSION = "marshrut_dispatcher"
_AFTER_END = "marshrut_dispatch_when_ended"  # committed events, dispatched at transaction end

# Built once: a reused statement also keeps its cache key (the per-event path runs them all).
# On the tables, not the mapped classes, and run on the session's connection: plain Core
# statements skip the ORM's statement handling (an ORM UPDATE … RETURNING costs several times
# the statement), and nothing they read or write is held as an object by a dispatcher session.
_OUTBOX = OutboxEvent.__table__
_DEFINITIONS = ProcessDefinition.__table__
_LOCK_EVENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("event_id"), _OUTBOX.c.dispatched_at.is_(None))
    .values(attempts=_OUTBOX.c.attempts)
    .returning(_OUTBOX.c.event_type, _OUTBOX.c.entity_type, _OUTBOX.c.entity_id,
               _OUTBOX.c.payload, _OUTBOX.c.actor_user_id, _OUTBOX.c.actor_label,
               _OUTBOX.c.attempts))
_LISTENERS = (
    select(_DEFINITIONS.c.id, _DEFINITIONS.c.key, _DEFINITIONS.c.version,
           _DEFINITIONS.c.deployed_at, _DEFINITIONS.c.triggers, _DEFINITIONS.c.active,
           _DEFINITIONS.c.catches)
    .where(or_(_DEFINITIONS.c.active.is_(True), _DEFINITIONS.c.catches.isnot(None)))
    .order_by(_DEFINITIONS.c.priority, _DEFINITIONS.c.key))
_MARK_DISPATCHED = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)),
           _OUTBOX.c.dispatched_at.is_(None))
    .values(dispatched_at=bindparam("now", type_=_OUTBOX.c.dispatched_at.type)))
_STARTED = select(ProcessInstance.__table__.c.definition_id).where(
    ProcessInstance.__table__.c.event_id == bindparam("event_id"))


LOCK_RETRIES = 3  # an event whose transaction lost a race runs again at once this often


class _Busy(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class DispatchReport:
    """What one dispatch call did (for the CLI, logs and tests)."""

    events: int = 0
    started: list[int] = field(default_factory=list)  # instance ids
    skipped: list[str] = field(default_factory=list)  # "event 5: key (why)"
    failed: list[str] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)  # waiting instances the event moved

    def merge(self, other: DispatchReport) -> None:
        self.events += other.events
        self.started += other.started
        self.delivered += other.delivered
        self.skipped += other.skipped
        self.failed += other.failed


@dataclass(frozen=True)
class _Listener:
    id: int
    key: str
    version: int
    deployed_at: Any = None  # with the id, identifies the row even if an id is ever reused


class _Listeners(dict[str, list[_Listener]]):
    """Event type → the active definitions it starts; ``catching``: the message names that
    running instances of any version can catch (``engine.correlation``)."""

    def __init__(self) -> None:
        super().__init__()
        self.catching: set[str] = set()


@dataclass(frozen=True)
class _Event:
    """What dispatching needs of an outbox row, read once per batch."""

    id: int
    event_type: str
    entity_type: str
    entity_id: int
    payload: dict[str, Any]
    actor_user_id: int | None
    actor_label: str


def _outbox_inserted(session: Session, row: dict[str, Any]) -> None:
    """``crm_models.services.rows.OUTBOX_INSERTED``: remember the outbox event this session
    has just written (the service layer writes them with Core)."""
    session.info.setdefault(OUTBOX_IDS, []).append(
        (row["id"], row["event_type"], row["actor_label"]))


def _forget_outbox_ids(session: Session, previous_transaction: Any) -> None:
    """A rolled-back *root* transaction took its events with it. (After a savepoint's
    rollback the ids of its events stay: the dispatcher reads the ids back from the table
    and finds none for them.)"""
    if previous_transaction.parent is None and not previous_transaction.nested:
        session.info.pop(OUTBOX_IDS, None)


def track_outbox(factory: Any) -> None:
    """Make sessions of ``factory`` (a sessionmaker) record the outbox ids they write."""
    add_outbox_listener(factory, _outbox_inserted)  # (once, however often it is called)
    if not sa_event.contains(factory, "after_soft_rollback", _forget_outbox_ids):
        sa_event.listen(factory, "after_soft_rollback", _forget_outbox_ids)


class Dispatcher:
    """Starts process instances for outbox events (see the module docstring)."""

    def __init__(self, engine: Engine, session_factory: SessionFactory, *,
                 max_cascade: int = 5, max_attempts: int = 5, batch: int = 200,
                 per_transaction: int = 50) -> None:
        """``batch``: events the recovery loop reads at a time; ``per_transaction``: events
        dispatched in one transaction when several are pending (1: each in its own)."""
        self.engine = engine
        self.session_factory = session_factory
        self.max_cascade = max_cascade
        self.max_attempts = max_attempts
        self.batch = batch
        self.per_transaction = max(1, per_transaction)
        self._local = threading.local()
        self._definitions: dict[_Listener, ProcessDefinition] = {}
        track_outbox(session_factory)

    # --- entry points ---------------------------------------------------------------------

    def dispatch(self, event_ids: Iterable[int], per_transaction: int | None = None
                 ) -> DispatchReport:
        """Dispatch these events now, then the events their processes wrote, and so on.

        Several events go ``per_transaction`` at a time (default: the dispatcher's) into one
        transaction, each in a savepoint of its own (see ``_dispatch_together``)."""
        report = DispatchReport()
        queue = sorted(set(event_ids))
        together = self.per_transaction if per_transaction is None else max(1, per_transaction)
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            while queue:
                queue = self._dispatch_batch(queue, report, together)
        finally:
            self._local.depth -= 1
        return report

    def _dispatch_batch(self, ids: list[int], report: DispatchReport,
                        together: int = 1) -> list[int]:
        """One pass: with several events, first mark those nobody listens to in one UPDATE;
        then each other event in its own transaction. Returns the ids the processes wrote."""
        if len(ids) > 1:
            try:
                with self._session() as s:
                    pending = s.execute(select(OutboxEvent.id, OutboxEvent.event_type).where(
                        OutboxEvent.id.in_(ids), OutboxEvent.dispatched_at.is_(None))
                        .order_by(OutboxEvent.id)).all()
                    listeners = self._listeners(s)
                    catching = listeners.catching
            except Exception as exc:  # noqa: BLE001 - the events stay pending: retried later
                log.exception("reading outbox events %s failed", ids)
                report.failed.append(f"events {ids[:10]}: {type(exc).__name__}: {exc}")
                return []
            quiet = [id_ for id_, type_ in pending
                     if not listeners.get(type_) and not wants(catching, type_)]
            if quiet:
                report.events += len(quiet)
                self._mark_quiet(quiet, report)
            ids = [id_ for id_, type_ in pending
                   if listeners.get(type_) or wants(catching, type_)]
        new_ids: list[int] = []
        if together > 1 and len(ids) > 1:
            for i in range(0, len(ids), together):
                new_ids += self._dispatch_together(ids[i:i + together], report)
            return sorted(set(new_ids))
        for id_ in ids:
            new_ids += self._dispatch_event(id_, report)
        return sorted(set(new_ids))

    def _dispatch_together(self, ids: list[int], report: DispatchReport) -> list[int]:
        """Bulk dispatch: these events in ONE transaction, each in its own savepoint — a
        failing event rolls back only its own starts and is recorded (attempts + 1, its
        error) in the same commit; the others are dispatched as usual. If the transaction
        itself is lost (a lock, a lost connection, a failed commit) nothing of it stays
        and every event of it goes again, one transaction each."""
        part = DispatchReport()
        new_ids: list[int] = []
        try:
            with self._session() as s:
                triggers = self._listeners(s)
                self._preload(s, ids, triggers)
                for event_id in ids:
                    mark = len(s.info.get(OUTBOX_IDS, ()))
                    try:
                        with s.begin_nested():
                            new_ids += self._dispatch_in(s, event_id, part, triggers)
                    except OperationalError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - this event only; go on
                        if lock_failure(exc):
                            raise
                        del s.info.get(OUTBOX_IDS, [])[mark:]
                        message = f"{type(exc).__name__}: {exc}"
                        log.exception("dispatching outbox event %s failed", event_id)
                        part.failed.append(f"event {event_id}: {message}")
                        s.execute(update(OutboxEvent).where(OutboxEvent.id == event_id)
                                  .values(attempts=OutboxEvent.attempts + 1,
                                          last_error=message[:4000]))
                s.info.pop(OUTBOX_IDS, None)
                s.commit()
        except Exception:  # noqa: BLE001 - the batch is lost as a whole: one by one
            log.warning("bulk dispatch of events %s… failed; one transaction each",
                        ids[:5], exc_info=True)
            new_ids = []
            for event_id in ids:
                new_ids += self._dispatch_event(event_id, report)
            return new_ids
        report.merge(part)
        return new_ids

    @staticmethod
    def _preload(s: Session, ids: list[int], triggers: _Listeners) -> None:
        """The records of the batch's pending events that start a definition, read in one
        statement per entity type (``snapshot.preload``): each event's snapshot then finds its
        record in the session, as it finds one a process of this batch has just written."""
        rows = s.connection().execute(
            select(_OUTBOX.c.event_type, _OUTBOX.c.entity_type, _OUTBOX.c.entity_id)
            .where(_OUTBOX.c.id.in_(ids), _OUTBOX.c.dispatched_at.is_(None))).all()
        refs = [(entity, entity_id) for type_, entity, entity_id in rows if triggers.get(type_)]
        if len(refs) > 1:
            preload(s, refs)

    def _mark_quiet(self, ids: list[int], report: DispatchReport) -> None:
        try:
            with self._session() as s:
                s.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids),
                                                    OutboxEvent.dispatched_at.is_(None))
                          .values(dispatched_at=utcnow()))
                s.commit()
        except Exception as exc:  # noqa: BLE001 - they stay pending: the loop retries
            log.exception("marking outbox events %s dispatched failed", ids)
            report.failed.append(f"events {ids[:10]}: {type(exc).__name__}: {exc}")

    def dispatch_pending(self, limit: int | None = None, per_transaction: int | None = None
                         ) -> DispatchReport:
        """The recovery loop: dispatch every undispatched event (oldest first) that has not
        failed ``max_attempts`` times, ``per_transaction`` of them (default: the
        dispatcher's) per transaction. Safe to run anywhere, any time, concurrently."""
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
            report.merge(self.dispatch(ids, per_transaction))
        return report

    @contextmanager
    def deferred(self, per_transaction: int | None = None) -> Iterator[None]:
        """Within the block, the events that commits of this thread's sessions would
        dispatch at once are collected instead, and dispatched together when the block ends
        (``per_transaction`` per transaction, each event in its own savepoint): for a caller
        that commits many small units of work in a row (a Bitrix ``batch``, an import).
        Nested blocks dispatch once, at the outermost end; an error still dispatches what
        was committed (the recovery loop would otherwise take it later)."""
        outer = getattr(self._local, "deferred", None)
        if outer is not None:
            yield
            return
        collected: list[int] = []
        self._local.deferred = collected
        try:
            yield
        finally:
            self._local.deferred = None
            if collected:
                try:
                    self.dispatch(collected, per_transaction)
                except Exception:  # noqa: BLE001 - the recovery loop picks them up
                    log.exception("dispatching deferred outbox events %s… failed",
                                  collected[:10])

    def defer(self, ids: list[int]) -> bool:
        """Collect ``ids`` for the ``deferred`` block this thread is in (False: none)."""
        collected = getattr(self._local, "deferred", None)
        if collected is None:
            return False
        collected.extend(ids)
        return True

    @property
    def busy(self) -> bool:
        """True while this thread is inside a dispatch (the after-commit hook then waits)."""
        return bool(getattr(self._local, "depth", 0))

    # --- one event ------------------------------------------------------------------------

    def _session(self) -> Session:
        s = self.session_factory(write=True)  # every dispatcher transaction writes
        s.info[_DISPATCHER_SESSION] = True
        return s

    def _dispatch_event(self, event_id: int, report: DispatchReport) -> list[int]:
        """One event as a unit of work: run again at once if it lost a race (deadlock,
        stale snapshot); a busy database is no failed attempt — the event stays pending
        and the recovery loop takes it later."""
        for attempt in range(LOCK_RETRIES + 1):
            try:
                return self._dispatch_event_once(event_id, report)
            except _Busy as busy:
                if busy.kind == "retry" and attempt < LOCK_RETRIES:
                    continue
                report.failed.append(f"event {event_id}: database busy ({busy.kind}); "
                                     "left pending for the recovery loop")
                log.warning("outbox event %s left pending: the database stayed busy",
                            event_id)
                return []
        return []

    def _dispatch_event_once(self, event_id: int, report: DispatchReport) -> list[int]:
        """Start each listening definition for one event, in order, in ONE transaction that
        begins by locking the event row: each start in its own savepoint (a failure undoes
        only that start), the event marked dispatched in the same commit when all have
        started. Returns the outbox ids the processes wrote that some definition listens to
        (the others are marked dispatched in this transaction)."""
        try:
            with self._session() as s:
                new_ids = self._dispatch_in(s, event_id, report)
                s.commit()
                return new_ids
        except Exception as exc:  # noqa: BLE001 - never lose the event; record and go on
            kind = lock_failure(exc)
            if kind:
                raise _Busy(kind) from exc
            message = f"{type(exc).__name__}: {exc}"
            log.exception("dispatching outbox event %s failed", event_id)
            report.failed.append(f"event {event_id}: {message}")
            self._record_failure(event_id, message)
            return []

    def _correlate(self, s: Session, ev: _Event, catching: set[str],
                   report: DispatchReport) -> list[int]:
        """Hand the event to the running instances of its record that wait for it
        (``engine.correlation``), not to the one whose write it is. Returns the outbox ids
        they wrote, for the next pass."""
        if not wants(catching, ev.event_type):
            return []
        data = self._start_data(s, ev)
        if data is None:
            return []
        cause = parse_process_label(ev.actor_label)
        mark = len(s.info.get(OUTBOX_IDS, ()))
        moved = self.engine.correlator.deliver(
            s, ev.event_type, ev.entity_type, ev.entity_id, data,
            skip_instance=cause.instance_id if cause is not None else None)
        report.delivered += moved
        written = s.info.get(OUTBOX_IDS, [])[mark:]
        if not moved:
            return []
        del s.info.get(OUTBOX_IDS, [])[mark:]
        return [entry[0] for entry in written]

    def _dispatch_in(self, s: Session, event_id: int, report: DispatchReport,
                     triggers: _Listeners | None = None) -> list[int]:
        """The work of one event in ``s`` (not committed): lock it, start its listeners,
        mark it. Returns the outbox ids its processes wrote that a definition listens to."""
        locked = self._lock_event(s, event_id)
        if locked is None:  # dispatched meanwhile (or never was an event)
            return []
        ev, attempts = locked
        report.events += 1
        if triggers is None:
            triggers = self._listeners(s)
        listeners = self._eligible(s, ev, triggers.get(ev.event_type, []), report)
        written = self._correlate(s, ev, triggers.catching, report)
        if not listeners:
            return written  # marked by ``_eligible``
        return written + self._start_all(s, ev, attempts, listeners, triggers, report)

    def _eligible(self, s: Session, ev: _Event, listeners: list[_Listener],
                  report: DispatchReport) -> list[_Listener]:
        """The listeners that may start: not the process whose write this event is, and
        none past ``max_cascade`` process hops. With none left the event is marked
        dispatched (in ``s``, not committed)."""
        cause = parse_process_label(ev.actor_label)
        if cause is not None and listeners:
            depth = self._cascade_depth(s, ev.actor_label)
            if depth >= self.max_cascade:
                note = (f"not dispatched: {depth} processes in a row caused this event "
                        f"(limit {self.max_cascade}); check the definitions for a loop")
                report.skipped.append(f"event {ev.id}: {note}")
                log.warning("outbox event %s: %s", ev.id, note)
                self._mark_dispatched(s, ev.id, note)
                return []
            own = [x for x in listeners if x.key == cause.key]
            report.skipped += [f"event {ev.id}: {x.key} (its own write)" for x in own]
            listeners = [x for x in listeners if x.key != cause.key]
        if not listeners:
            self._mark_dispatched(s, ev.id, "")
        return listeners

    def _start_all(self, s: Session, ev: _Event, attempts: int, listeners: list[_Listener],
                   triggers: dict[str, list[_Listener]], report: DispatchReport) -> list[int]:
        # A first attempt holds the event's lock: no instance of it can exist yet.
        done = set(s.connection().scalars(_STARTED, {"event_id": ev.id})) if attempts \
            else set()
        written: list[tuple[int, str, str | None]] = []
        failures: list[str] = []
        #: history rows of the pre-filtered starts, written with the next start's (in its
        #: savepoint: one statement for both) or, when there is none or it fails, at the end
        deferred: list[dict[str, Any]] = []
        data: dict[str, Any] | None = None
        fresh = False  # whether ``data`` reflects every write made so far
        for listener in listeners:
            if listener.id in done:
                report.skipped.append(f"event {ev.id}: {listener.key} (already started)")
                continue
            if not fresh:  # each definition sees what the ones before it wrote
                data, fresh = self._start_data(s, ev), True
            if data is None:
                report.skipped.append(f"event {ev.id}: {listener.key} "
                                      f"({ev.entity_type} {ev.entity_id} is gone)")
                continue
            mark = len(s.info.get(OUTBOX_IDS, ()))
            definition = self._definition(s, listener)
            request = StartRequest(
                data=data, entity_type=ev.entity_type, entity_id=ev.entity_id,
                event_id=ev.id, started_by=ev.actor_user_id, message=ev.event_type)
            # A rule whose start condition cannot match writes its instance and history
            # without running (``engine.prefilter``) and with no savepoint: it writes no CRM
            # data, and a failure of its INSERTs (the database's) is not caught here — the
            # event's transaction fails as a whole and is retried.
            try:
                inst = self.engine.start_if_filtered(s, definition, request, history=deferred)
            except AlreadyStarted:
                report.skipped.append(f"event {ev.id}: {listener.key} (already started)")
                continue
            try:
                if inst is None:
                    with s.begin_nested():
                        inst = self.engine.start(s, definition, request, history=deferred)
                    deferred = []  # written in the savepoint just released
            except (AlreadyStarted, IntegrityError):
                # a concurrent dispatcher won: exactly one instance exists
                del s.info.get(OUTBOX_IDS, [])[mark:]
                report.skipped.append(f"event {ev.id}: {listener.key} (already started)")
                continue
            except OperationalError:
                raise  # the transaction is lost (lock, connection): retried as a whole
            except Exception as exc:  # noqa: BLE001 - recorded; the others go on
                del s.info.get(OUTBOX_IDS, [])[mark:]
                message = f"{listener.key}: {type(exc).__name__}: {exc}"
                log.exception("dispatching outbox event %s to %s failed", ev.id, listener.key)
                report.failed.append(f"event {ev.id}: {message}")
                failures.append(message)
                continue
            report.started.append(inst.id)
            new = s.info.get(OUTBOX_IDS, [])[mark:]
            if new:
                written += new
                fresh = False
        self.engine.write_history(s, deferred)
        s.info.pop(OUTBOX_IDS, None)
        # An event that only its own writer's process listens to (the routing's own
        # deal.updated) would be skipped as "its own write" by its dispatch: done here.
        quiet = [id_ for id_, type_, label in written if not _others(triggers, type_, label)]
        if failures:  # not marked: the recovery loop starts what is missing
            s.execute(update(OutboxEvent).where(OutboxEvent.id == ev.id)
                      .values(attempts=OutboxEvent.attempts + 1,
                              last_error="; ".join(failures)[:4000]))
        else:
            quiet.append(ev.id)
        if quiet:  # nobody listens to these: done with them in this very transaction
            s.connection().execute(_MARK_DISPATCHED, {"ids": quiet, "now": utcnow()})
        return [id_ for id_, type_, label in written if _others(triggers, type_, label)]

    def _definition(self, s: Session, listener: _Listener) -> ProcessDefinition:
        """The definition row, attached to ``s`` without reloading its (large) stored spec:
        a version's BPMN and spec never change, so one read per process is enough."""
        cached = self._definitions.get(listener)
        if cached is None:
            with self.session_factory() as other:
                cached = other.get(ProcessDefinition, listener.id)
                if cached is None:
                    raise LookupError(f"process definition {listener.id} vanished")
                other.expunge(cached)
            if len(self._definitions) > 1000:
                self._definitions.clear()
            self._definitions[listener] = cached
        merged = s.merge(cached, load=False)
        # Active as the listener query has just read it (the cached copy may be older);
        # set as loaded, not as a change to write.
        set_committed_value(merged, "active", True)
        return merged

    @staticmethod
    def _start_data(s: Session, ev: _Event) -> dict[str, Any] | None:
        try:
            return start_data(s, ev.entity_type, ev.entity_id, ev)
        except SnapshotError:
            fields = (ev.payload or {}).get("fields") if isinstance(ev.payload, dict) else None
            if not isinstance(fields, dict):
                return None
            # ``<entity>.deleted``: the row is gone, its last fields travel in the payload.
            return {ev.entity_type: fields, "event": event_data(ev, ev.entity_type,
                                                                ev.entity_id)}

    def _listeners(self, s: Session) -> _Listeners:
        """Event type → the active definitions it starts, in (priority, key) order. Reads
        only the columns it needs (not the stored specs): it runs for every batch."""
        rows = s.connection().execute(_LISTENERS)
        out = _Listeners()
        for id_, key, version, deployed_at, triggers, active, catches in rows:
            out.catching.update(catches or ())
            if not active:
                continue  # an old version: only its running instances' catches count
            for t in dict.fromkeys(triggers or ()):
                out.setdefault(t, []).append(_Listener(id_, key, version, deployed_at))
        return out

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
    def _lock_event(s: Session, event_id: int) -> tuple[_Event, int] | None:
        """Write first: a no-op UPDATE of the still-pending event row, returning the event
        and its attempts so far (None if it is dispatched already). On PostgreSQL it locks
        the row, so a second dispatcher of the same event waits and then finds it
        dispatched; on SQLite the transaction takes the write lock up front (waiting its
        turn) instead of failing later when a read snapshot turns out stale."""
        row = s.connection().execute(_LOCK_EVENT, {"event_id": event_id}).one_or_none()
        if row is None:
            return None
        type_, entity_type, entity_id, payload, user_id, label, attempts = row
        return _Event(event_id, type_, entity_type, entity_id,
                      payload if isinstance(payload, dict) else {}, user_id,
                      label or ""), attempts or 0

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


def _others(triggers: dict[str, list[_Listener]], event_type: str, label: str | None
            ) -> bool:
    """Whether a definition other than the writing process's own listens to the event, or a
    running instance may catch it (``engine.correlation``)."""
    if isinstance(triggers, _Listeners) and wants(triggers.catching, event_type):
        return True
    cause = parse_process_label(label)
    own = cause.key if cause is not None else None
    return any(x.key != own for x in triggers.get(event_type, ()))


def install_after_commit(factory: Any, dispatcher: Dispatcher) -> None:
    """Dispatch the outbox events of every session of ``factory`` right after it commits.

    The events are taken at ``after_commit`` and dispatched when the transaction has ended
    (``after_transaction_end``), i.e. once the session has given its connection back to the
    pool: a request never holds two pooled connections (nor, on SQLite, a lock) while its
    events are routed. A session with ``session.info[NO_DISPATCH]`` set is left to the
    recovery loop. Errors are logged, never raised: the caller's commit has succeeded and
    ``dispatch_pending`` retries.
    """
    track_outbox(factory)

    def _after_commit(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint was released: the outer transaction has not committed yet
        if session.info.get(_DISPATCHER_SESSION):
            return  # the dispatcher collects its own sessions' events
        ids = [id_ for id_, *_rest in session.info.pop(OUTBOX_IDS, ())]
        if not ids or session.info.get(NO_DISPATCH):
            return
        if dispatcher.busy:
            return  # a process's own session inside a dispatch: the dispatch loop takes them
        session.info.setdefault(_AFTER_END, []).extend(ids)

    def _after_transaction_end(session: Session, transaction: Any) -> None:
        if transaction.parent is not None or transaction.nested:
            return
        ids = session.info.pop(_AFTER_END, None)
        if not ids:
            return
        if dispatcher.defer(ids):
            return  # dispatched with the others at the end of the ``deferred`` block
        try:
            dispatcher.dispatch(ids)
        except Exception:  # noqa: BLE001 - the recovery loop will pick the events up
            log.exception("dispatching outbox events %s after commit failed", ids)
        # The processes may have changed rows this session holds: reload them on next access.
        session.expire_all()

    sa_event.listen(factory, "after_commit", _after_commit)
    sa_event.listen(factory, "after_transaction_end", _after_transaction_end)


def dispatch_pending(session_factory: SessionFactory, engine: Engine,
                     limit: int | None = None, per_transaction: int = 50) -> DispatchReport:
    """The recovery loop as a function (see ``Dispatcher.dispatch_pending``): for imports
    and batch writers that wrote many events with ``session.info[NO_DISPATCH]`` set, then
    dispatch them ``per_transaction`` per transaction (each event in its own savepoint)."""
    return Dispatcher(engine, session_factory).dispatch_pending(limit, per_transaction)
