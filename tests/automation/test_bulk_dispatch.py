"""Bulk dispatch: many pending events (an import, a Bitrix batch, the recovery loop) go N per
transaction, each in a savepoint of its own, with the guarantees of one-by-one dispatch."""
from __future__ import annotations

from sqlalchemy import event, func, select

from automation.dispatcher import NO_DISPATCH, Dispatcher, dispatch_pending
from crm_models.activity import OutboxEvent
from crm_models.entities import Deal
from crm_models.services import create_deal
from tests.factories import SYSTEM

from .support import instances_of, tasks_of


def pending_deals(db, demo, n, title="Import"):
    """n large deals committed with dispatch off, as an import writes them."""
    db.info[NO_DISPATCH] = True
    ids = [create_deal(db, SYSTEM, title=f"{title} {i}", amount="3000000",
                       responsible_id=demo.m1.id).id for i in range(n)]
    db.commit()
    db.info.pop(NO_DISPATCH)
    return ids


def commits_during(app, fn):
    """(fn's result, transactions committed on the app's engine while it ran)."""
    seen = []

    def on_commit(conn):
        seen.append(conn)

    engine = app.extensions["db_engine"]
    event.listen(engine, "commit", on_commit)
    try:
        return fn(), len(seen)
    finally:
        event.remove(engine, "commit", on_commit)


def routed(db, demo, ids):
    db.rollback()
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Deal).where(
        Deal.id.in_(ids), Deal.responsible_id == demo.corporate.id))


def test_pending_events_are_dispatched_n_per_transaction(app, db, demo, engine):
    ids = pending_deals(db, demo, 12)
    factory = app.extensions["db_sessionmaker"]
    report, commits = commits_during(
        app, lambda: dispatch_pending(factory, engine, per_transaction=5))
    assert len(report.started) == 24 and report.failed == []  # two rules per deal
    assert routed(db, demo, ids) == 12
    assert all(len(tasks_of(db, entity_id=i)) == 1 for i in ids)
    # 12 events in 3 transactions (5 + 5 + 2), plus the routing's own events: marked in
    # the same transactions (no listener but their own process)
    assert commits <= 4, commits
    assert db.scalar(select(func.count()).select_from(OutboxEvent)
                     .where(OutboxEvent.dispatched_at.is_(None))) == 0


def test_a_failing_event_undoes_only_its_own_starts(app, db, demo, engine, monkeypatch):
    ids = pending_deals(db, demo, 6)
    bad = ids[2]
    dispatcher = Dispatcher(engine, app.extensions["db_sessionmaker"], per_transaction=50)
    original = Dispatcher._start_all

    def start_all(self, s, ev, *args, **kw):
        new = original(self, s, ev, *args, **kw)  # the starts are written …
        if ev.entity_id == bad:
            raise RuntimeError("boom after the starts")  # … then the event fails
        return new

    monkeypatch.setattr(Dispatcher, "_start_all", start_all)
    report, commits = commits_during(app, dispatcher.dispatch_pending)
    assert commits == 1  # no retry one by one: the batch itself was sound
    assert [f for f in report.failed if f.startswith("event ")] and len(report.failed) == 1
    assert "boom after the starts" in report.failed[0]
    assert routed(db, demo, ids) == 5
    assert instances_of(db, "large_deal_routing", entity_id=bad) == []
    assert instances_of(db, "key_client_routing", entity_id=bad) == []
    assert db.get(Deal, bad).responsible_id == demo.m1.id  # its CRM write undone too
    ev = db.scalars(select(OutboxEvent).where(OutboxEvent.entity_id == bad,
                                              OutboxEvent.event_type == "deal.created")).one()
    assert (ev.dispatched_at, ev.attempts) == (None, 1)
    assert "boom after the starts" in ev.last_error
    # the routing's deal.updated of the undone start is gone with it
    assert db.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.entity_id == bad, OutboxEvent.event_type == "deal.updated")) == 0

    monkeypatch.setattr(Dispatcher, "_start_all", original)
    again = dispatcher.dispatch_pending()  # the recovery loop finishes it
    assert len(again.started) == 2 and again.failed == []
    assert routed(db, demo, ids) == 6


def test_a_lost_bulk_transaction_falls_back_to_one_event_per_transaction(
        app, db, demo, engine, monkeypatch):
    ids = pending_deals(db, demo, 4)
    dispatcher = Dispatcher(engine, app.extensions["db_sessionmaker"], per_transaction=50)
    calls = []
    original = Dispatcher._listeners

    def listeners(self, s):
        calls.append(1)
        if len(calls) == 2:  # the bulk transaction's read (the 1st is the pending check)
            raise RuntimeError("connection lost")
        return original(self, s)

    monkeypatch.setattr(Dispatcher, "_listeners", listeners)
    report = dispatcher.dispatch_pending()
    assert report.failed == [] and len(report.started) == 8
    assert routed(db, demo, ids) == 4
    for i in ids:
        assert len(instances_of(db, "large_deal_routing", entity_id=i)) == 1


def test_commits_in_a_deferred_block_are_routed_together_at_its_end(app, db, demo, dispatcher):
    factory = app.extensions["db_sessionmaker"]
    ids = []

    def create_three():
        with dispatcher.deferred():
            for i in range(3):
                with factory() as s:
                    ids.append(create_deal(s, SYSTEM, title=f"Batch {i}", amount="3000000",
                                           responsible_id=demo.m1.id).id)
                    s.commit()  # its event waits for the end of the block
            assert routed(db, demo, ids) == 0
        return None

    _none, commits = commits_during(app, create_three)
    assert routed(db, demo, ids) == 3
    assert commits == 3 + 1  # the three creates, then one transaction routing all three
