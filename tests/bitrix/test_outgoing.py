"""Outgoing webhooks: Bitrix24-style form POSTs from the outbox to a loopback handler, after
commit, retried with back-off, logged; the outbox's own dispatch marker is left alone."""
from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.db import utcnow
from crm_models.errors import PermissionDenied, ValidationFailed
from crm_models.permissions import actor_for
from integrations.delivery import DeliveryThread, DeliveryWorker, http_post_form, retry_delivery
from integrations.models import Delivery
from integrations.outgoing import register_handler
from integrations.url_guard import UrlGuard
from tests.factories import SYSTEM, make_deal


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now


def worker(app: Any, receiver: Any = None, **kw: Any) -> DeliveryWorker:
    """A worker whose guard allow-lists ``receiver`` (loopback is refused otherwise)."""
    if receiver is not None:
        kw["guard"] = receiver.guard
    return DeliveryWorker(app.extensions["db_sessionmaker"], domain="crm.example", **kw)


def test_deal_events_are_posted_like_bitrix24(app, org, db, admin_hook, rest, receiver):
    add = register_handler(db, SYSTEM, event="ONCRMDEALADD", url=receiver.url,
                     guard=receiver.guard)
    upd = register_handler(db, SYSTEM, event="oncrmdealupdate", url=receiver.url,
                     guard=receiver.guard)
    register_handler(db, SYSTEM, event="ONCRMDEALDELETE", url=receiver.url,
                     guard=receiver.guard)
    db.commit()
    deal_id = rest(admin_hook, "crm.deal.add", {"fields": {"TITLE": "Hooked"}})[1]["result"]
    rest(admin_hook, "crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "WON"}})
    rest(admin_hook, "crm.deal.delete", {"id": deal_id})
    rest(admin_hook, "crm.contact.add", {"fields": {"NAME": "No handler"}})
    db.rollback()
    marks = {e.id: e.dispatched_at for e in db.scalars(select(OutboxEvent))}
    db.rollback()
    assert worker(app, receiver).run_once() == (3, 3)
    events = [p["event"] for p in receiver.posts]
    # a stage change is one ONCRMDEALUPDATE, as in Bitrix24 (no extra event)
    assert events == ["ONCRMDEALADD", "ONCRMDEALUPDATE", "ONCRMDEALDELETE"]
    first = receiver.posts[0]
    assert first["data[FIELDS][ID]"] == str(deal_id)
    assert first["auth[application_token]"] == add.application_token
    assert first["auth[domain]"] == "crm.example"
    assert first["event_handler_id"] == str(add.id)
    assert abs(int(first["ts"]) - time.time()) < 120
    assert receiver.posts[1]["auth[application_token]"] == upd.application_token
    db.rollback()
    log = db.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.status, d.attempts, d.last_status) for d in log] == [("sent", 1, 200)] * 3
    # the process dispatcher's marker is not ours to set
    db.expire_all()
    assert {e.id: e.dispatched_at for e in db.scalars(select(OutboxEvent))} == marks
    assert worker(app, receiver).run_once() == (0, 0)  # nothing twice


def test_activity_and_comment_events(app, org, db, admin_hook, rest, receiver):
    register_handler(db, SYSTEM, event="ONCRMACTIVITYADD", url=receiver.url,
                     guard=receiver.guard)
    register_handler(db, SYSTEM, event="ONCRMTIMELINECOMMENTADD", url=receiver.url,
                     guard=receiver.guard)
    deal = make_deal(db, org.admin)
    db.commit()
    act = rest(admin_hook, "crm.activity.add", {"fields": {
        "OWNER_TYPE_ID": 2, "OWNER_ID": deal.id, "SUBJECT": "Call"}})[1]["result"]
    com = rest(admin_hook, "crm.timeline.comment.add", {"fields": {
        "ENTITY_TYPE": "deal", "ENTITY_ID": deal.id, "COMMENT": "hi"}})[1]["result"]
    worker(app, receiver).run_once()
    assert [(p["event"], p["data[FIELDS][ID]"]) for p in receiver.posts] == [
        ("ONCRMACTIVITYADD", str(act)), ("ONCRMTIMELINECOMMENTADD", str(com))]


def test_failures_are_retried_with_back_off_then_given_up(app, org, db, receiver):
    register_handler(db, SYSTEM, event="ONCRMDEALADD", url=receiver.url,
                     guard=receiver.guard)
    db.commit()
    make_deal(db, org.admin)
    db.commit()
    receiver.statuses = [500, 503, 500]
    clock = Clock()
    w = worker(app, receiver, clock=clock, max_attempts=3, base_delay=dt.timedelta(seconds=30))
    w.grace = dt.timedelta(0)
    assert w.run_once() == (1, 1)
    db.rollback()
    d = db.scalars(select(Delivery)).one()
    assert (d.status, d.attempts, d.last_status) == ("pending", 1, 500)
    assert d.next_attempt_at == clock.now + dt.timedelta(seconds=30)
    assert w.run_once() == (0, 0)  # not due yet
    clock.now += dt.timedelta(seconds=31)
    w.run_once()
    db.rollback()
    d = db.scalars(select(Delivery)).one()
    assert (d.attempts, d.last_status) == (2, 503)
    assert d.next_attempt_at == clock.now + dt.timedelta(seconds=60)  # doubled
    clock.now += dt.timedelta(seconds=61)
    w.run_once()
    db.rollback()
    d = db.scalars(select(Delivery)).one()
    assert (d.status, d.attempts) == ("failed", 3)
    clock.now += dt.timedelta(days=1)
    assert w.run_once() == (0, 0)
    # an administrator sends it again
    retry_delivery(db, actor_for(db, org.admin), d.id)
    db.commit()
    clock.now = utcnow() + dt.timedelta(seconds=1)
    assert w.run_once() == (0, 1)
    db.expire_all()
    assert db.scalars(select(Delivery)).one().status == "sent"
    assert len(receiver.posts) == 4


def test_unreachable_handler_is_logged(app, org, db):
    closed_port = UrlGuard.from_config(["127.0.0.1:9"])
    register_handler(db, SYSTEM, event="ONCRMDEALADD", url="http://127.0.0.1:9/nothing-here",
                     guard=closed_port)
    db.commit()
    make_deal(db, org.admin)
    db.commit()
    worker(app, timeout=2, guard=closed_port).run_once()
    db.rollback()
    d = db.scalars(select(Delivery)).one()
    assert d.status == "pending" and d.last_status is None and d.last_error


def test_sender_never_raises_and_does_not_follow_redirects(receiver):
    result = http_post_form("http://127.0.0.1:9/", {"a": "b"}, 2,
                            guard=UrlGuard.from_config(["127.0.0.1:9"]))
    assert not result.ok and result.status is None and result.error and not result.refused
    receiver.statuses = [302]
    result = http_post_form(receiver.url, {"a": "b"}, 2, guard=receiver.guard)
    assert (result.ok, result.status) == (False, 302)
    assert http_post_form(receiver.url, {"a": "b"}, 2, guard=receiver.guard).ok
    assert len(receiver.posts) == 2


def test_handlers_registered_later_get_only_later_events(app, org, db, receiver):
    make_deal(db, org.admin, title="Before")
    db.commit()
    register_handler(db, SYSTEM, event="ONCRMDEALADD", url=receiver.url,
                     guard=receiver.guard)
    db.commit()
    after = make_deal(db, org.admin, title="After")
    db.commit()
    worker(app, receiver).run_once()
    assert [p["data[FIELDS][ID]"] for p in receiver.posts] == [str(after.id)]


def test_paused_handler_gets_nothing(app, org, db, receiver):
    from integrations.outgoing import set_handler_active

    h = register_handler(db, SYSTEM, event="ONCRMDEALADD", url=receiver.url,
                     guard=receiver.guard)
    db.commit()
    set_handler_active(db, SYSTEM, h.id, False)
    db.commit()
    make_deal(db, org.admin)
    db.commit()
    assert worker(app, receiver).run_once() == (0, 0)
    assert receiver.posts == []


def test_registration_is_validated_and_for_admins(app, org, db):
    with pytest.raises(ValidationFailed) as exc:
        register_handler(db, SYSTEM, event="ONSOMETHING", url="ftp://x")
    assert set(exc.value.fields) == {"event", "url"}
    with pytest.raises(PermissionDenied):
        register_handler(db, actor_for(db, org.m1), event="ONCRMDEALADD",
                         url="http://127.0.0.1:1/")


def test_sent_right_after_commit_by_the_background_thread(app, org, db, receiver):
    """The in-process worker wakes on the commit that wrote outbox events."""
    from crm_models.db import make_sessionmaker
    from integrations.delivery import watch_outbox_commits

    register_handler(db, SYSTEM, event="ONCRMDEALADD", url=receiver.url,
                     guard=receiver.guard)
    db.commit()
    sessions = make_sessionmaker(app.extensions["db_engine"])
    thread = DeliveryThread(worker(app, receiver), poll_seconds=3600)  # no polling: only the wake-up
    watch_outbox_commits(sessions, thread.wake)
    thread.start()
    try:
        with sessions() as s:
            deal = make_deal(s, org.admin, title="Now")
            s.commit()
        assert receiver.got_one.wait(10)
        assert receiver.posts[0]["data[FIELDS][ID]"] == str(deal.id)
    finally:
        thread.stop()


def test_two_workers_never_send_twice(app, org, db, receiver):
    register_handler(db, SYSTEM, event="ONCRMDEALADD", url=receiver.url,
                     guard=receiver.guard)
    db.commit()
    for _ in range(5):
        make_deal(db, org.admin)
    db.commit()
    a, b = worker(app, receiver), worker(app, receiver)
    threads = [threading.Thread(target=w.run_once) for w in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(receiver.posts) == 5
    db.rollback()
    assert db.scalars(select(Delivery.status)).all() == ["sent"] * 5
