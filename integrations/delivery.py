"""The delivery worker: turns committed outbox events into Bitrix24-style POSTs to the
registered handlers, retrying failures with exponential back-off.

It keeps its own cursor over the outbox (``bitrix_delivery_cursor``) and its own table of
deliveries; it never touches ``OutboxEvent.dispatched_at``, which belongs to the process
dispatcher. Several workers (threads or processes) may run at once: the cursor row is locked
while deliveries are created, a unique key stops duplicates, and each send is claimed with a
lease first.

Outbox ids are handed out when a transaction inserts, not when it commits, so an event with a
lower id can become visible after a higher one. The cursor therefore only moves past events
older than ``grace``; younger ones are scanned again (and skipped when already queued).
"""
from __future__ import annotations

import datetime as dt
import http.client
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm_models.activity import OutboxEvent
from crm_models.db import utcnow
from crm_models.errors import NotFound
from crm_models.permissions import Actor
from crm_models.services.records import record_event
from crm_models.services.rows import add_outbox_listener

from .models import Delivery, DeliveryCursor, EventHandler
from .outgoing import CURSOR, bitrix_event, payload
from .url_guard import UrlGuard, UrlRefused

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendResult:
    status: int | None  # HTTP status, None when no response came
    error: str = ""
    refused: bool = False  # the URL guard refused it: no connection was made, no retry helps

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


Sender = Callable[[str, dict[str, str], float], SendResult]


def http_post_form(url: str, fields: dict[str, str], timeout: float, *,
                   guard: UrlGuard | None = None) -> SendResult:
    """POST ``fields`` form-encoded to ``url`` through ``guard`` (default: nothing
    allow-listed); never raises for refused URLs, network or HTTP errors, never follows a
    redirect (that would turn the POST into a GET, and could point anywhere): a 3xx is
    reported as it is."""
    try:
        status, reason = (guard or UrlGuard()).post_form(url, fields, timeout)
    except UrlRefused as exc:
        return SendResult(None, f"refused: {exc}"[:500], refused=True)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return SendResult(None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return SendResult(status)
    return SendResult(status, f"HTTP {status} {reason}"[:500])


def guarded_sender(guard: UrlGuard) -> Sender:
    """``http_post_form`` bound to ``guard``."""
    def send(url: str, fields: dict[str, str], timeout: float) -> SendResult:
        return http_post_form(url, fields, timeout, guard=guard)
    return send


@dataclass
class DeliveryWorker:
    """One pass at a time (``run_once``); a ``DeliveryThread`` repeats it in the background."""

    sessions: sessionmaker
    guard: UrlGuard = field(default_factory=UrlGuard)  # outgoing URLs: see url_guard
    sender: Sender | None = None  # default: http_post_form through ``guard``
    clock: Callable[[], dt.datetime] = utcnow
    domain: str = "localhost"
    timeout: float = 10.0
    max_attempts: int = 8
    base_delay: dt.timedelta = dt.timedelta(seconds=30)
    max_delay: dt.timedelta = dt.timedelta(hours=6)
    grace: dt.timedelta = dt.timedelta(seconds=60)
    lease: dt.timedelta = dt.timedelta(minutes=2)
    batch: int = 200

    def backoff(self, attempts: int) -> dt.timedelta:
        """Wait after the ``attempts``-th failure: base, 2×base, 4×base … capped."""
        return min(self.base_delay * (2 ** max(0, attempts - 1)), self.max_delay)

    def run_once(self) -> tuple[int, int]:
        """Queue deliveries for new outbox events, then send the due ones.
        Returns (deliveries queued, deliveries attempted)."""
        with self.sessions() as session:
            queued = self.enqueue(session)
            session.commit()
            sent = self.send_due(session)
        return queued, sent

    def enqueue(self, session: Session) -> int:
        """Create the deliveries for outbox events past the cursor (caller commits)."""
        if session.get(DeliveryCursor, CURSOR) is None:
            return 0  # no handler was ever registered (registering creates the cursor)
        # End any read transaction first: on SQLite a reader cannot later become the writer
        # if someone else wrote meanwhile. Then writing the cursor row takes its lock, so
        # concurrent workers queue here.
        session.commit()
        session.execute(update(DeliveryCursor).where(DeliveryCursor.name == CURSOR)
                        .values(last_outbox_id=DeliveryCursor.last_outbox_id)
                        .execution_options(synchronize_session=False))
        start = session.scalar(select(DeliveryCursor.last_outbox_id)
                               .where(DeliveryCursor.name == CURSOR)) or 0
        handlers: dict[str, list[EventHandler]] = {}
        for h in session.scalars(select(EventHandler).where(EventHandler.active.is_(True))):
            handlers.setdefault(h.event, []).append(h)
        horizon = self.clock() - self.grace
        new_cursor, advancing, seen, queued = start, True, start, 0
        while True:
            events = list(session.scalars(select(OutboxEvent).where(OutboxEvent.id > seen)
                                          .order_by(OutboxEvent.id).limit(self.batch)))
            if not events:
                break
            existing = set(session.execute(select(Delivery.handler_id, Delivery.outbox_event_id)
                                           .where(Delivery.outbox_event_id.in_(
                                               [e.id for e in events]))).all())
            for ev in events:
                queued += self._queue_event(session, ev, handlers, existing)
                if advancing and ev.created_at <= horizon:
                    new_cursor = ev.id
                else:
                    advancing = False
            seen = events[-1].id
        session.execute(update(DeliveryCursor).where(DeliveryCursor.name == CURSOR)
                        .values(last_outbox_id=new_cursor)
                        .execution_options(synchronize_session=False))
        session.flush()
        return queued

    def _queue_event(self, session: Session, ev: OutboxEvent,
                     handlers: dict[str, list[EventHandler]],
                     existing: set[tuple[int, int]]) -> int:
        mapped = bitrix_event(ev)
        if mapped is None:
            return 0
        name, entity_id = mapped
        queued = 0
        for h in handlers.get(name, ()):
            if h.created_at > ev.created_at or (h.id, ev.id) in existing:
                continue
            session.add(Delivery(
                handler_id=h.id, outbox_event_id=ev.id, event=name, entity_id=entity_id,
                payload=payload(event=name, handler=h, entity_id=entity_id,
                                ts=int(ev.created_at.timestamp()), domain=self.domain),
                next_attempt_at=ev.created_at))
            queued += 1
        return queued

    def send_due(self, session: Session) -> int:
        """Send each due delivery once (claimed by a lease first); commits per delivery."""
        now = self.clock()
        due = list(session.scalars(
            select(Delivery.id).join(EventHandler, EventHandler.id == Delivery.handler_id)
            .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                   EventHandler.active.is_(True),
                   or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))
            .order_by(Delivery.id).limit(self.batch)))
        session.commit()
        attempted = 0
        for delivery_id in due:
            claimed = session.execute(
                update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "pending",
                                       or_(Delivery.lease_until.is_(None),
                                           Delivery.lease_until < now))
                .values(lease_until=now + self.lease)
                .execution_options(synchronize_session=False)).rowcount
            session.commit()
            if not claimed:
                continue  # another worker has it
            row = session.execute(select(EventHandler.url, Delivery.payload, Delivery.attempts)
                                  .join(Delivery, Delivery.handler_id == EventHandler.id)
                                  .where(Delivery.id == delivery_id)).one()
            session.commit()  # no transaction stays open during the HTTP call
            send = self.sender or guarded_sender(self.guard)
            result = send(row.url, dict(row.payload), self.timeout)
            attempted += 1
            self._record(session, delivery_id, row.attempts + 1, result)
            session.commit()
        return attempted

    def _record(self, session: Session, delivery_id: int, attempts: int,
                result: SendResult) -> None:
        """Store the outcome with one UPDATE (no read first: on SQLite a transaction that
        read cannot start writing once another connection has written)."""
        now = self.clock()
        values: dict[str, Any] = {"attempts": attempts, "last_status": result.status,
                                  "last_error": result.error[:2000], "lease_until": None}
        if result.ok:
            values.update(status="sent", sent_at=now, last_error="")
        elif result.refused or attempts >= self.max_attempts:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = now + self.backoff(attempts)
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values)
                        .execution_options(synchronize_session=False))


def retry_delivery(session: Session, actor: Actor, delivery_id: int) -> Delivery:
    """Send a delivery again at the next pass (a failed one gets a fresh set of attempts)."""
    actor.require_flag("manage_settings")
    d = session.get(Delivery, delivery_id) if isinstance(delivery_id, int) else None
    if d is None:
        raise NotFound(f"No delivery with id {str(delivery_id)[:20]}")
    if d.status != "sent":
        d.status, d.next_attempt_at, d.lease_until = "pending", utcnow(), None
        if d.attempts:
            d.attempts = 0
        session.flush()
        record_event(session, actor, entity="event_handler", entity_id=d.handler_id,
                     action="delivery_retried", event_type=None,
                     changes={"delivery": [None, d.id]})
    return d


class DeliveryThread:
    """Runs ``worker.run_once`` in a daemon thread: at once when woken (after a commit that
    wrote outbox events) and every ``poll_seconds`` for retries that fall due."""

    def __init__(self, worker: DeliveryWorker, *, poll_seconds: float = 15.0) -> None:
        self.worker = worker
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="webhook-delivery",
                                            daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.worker.run_once()
            except Exception:  # keep the thread alive; the next pass tries again
                log.exception("webhook delivery pass failed")


def watch_outbox_commits(sessions: sessionmaker, on_commit: Callable[[], None]) -> None:
    """Call ``on_commit`` after every commit of a ``sessions`` session that wrote outbox
    events (the trigger that sends deliveries right after the change is committed)."""
    key = "bitrix_outbox_written"

    def _inserted(session: Session, _row: dict[str, Any]) -> None:
        session.info[key] = True

    add_outbox_listener(sessions, _inserted)  # the service layer writes them with Core

    @event.listens_for(sessions, "after_commit")
    def _committed(session: Session) -> None:
        if session.info.pop(key, False):
            on_commit()

    @event.listens_for(sessions, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop(key, None)
