"""Outbox → instances: right after commit, exactly once, recovery after a crash, races, loops."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from automation.dispatcher import NO_DISPATCH, Dispatcher
from automation.setup import build_engine
from crm_models.activity import OutboxEvent
from crm_models.entities import Deal
from crm_models.services import create_deal, delete_deal, update_deal
from engine.store import ProcessHistory, ProcessInstance
from tests.factories import SYSTEM, make_deal

from .support import instances_of, service_process, tasks_of


def deploy(db, engine, *xmls):
    for xml in xmls:
        engine.deploy(db, xml)
    db.commit()


def deal_created_event(db, deal_id):
    db.rollback()
    db.expire_all()
    return db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "deal.created",
                                                OutboxEvent.entity_id == deal_id)).one()


def instance_count(db):
    db.rollback()
    db.expire_all()
    return db.scalar(select(func.count()).select_from(ProcessInstance))


def test_a_commit_dispatches_at_once_and_refreshes_the_session(db, demo):
    deal = create_deal(db, SYSTEM, title="Service layer", amount="1200000",
                       responsible_id=demo.m1.id)
    db.commit()
    # the after-commit dispatch already routed it; this session's object reloads
    assert deal.responsible_id == demo.corporate.id
    assert [t.name for t in tasks_of(db, entity_id=deal.id)] == ["Связаться с клиентом"]
    assert deal_created_event(db, deal.id).dispatched_at is not None


def test_crash_between_commit_and_dispatch_is_recovered_exactly_once(db, demo, dispatcher):
    db.info[NO_DISPATCH] = True  # as if the process died right after COMMIT
    deal = create_deal(db, SYSTEM, title="Crash", amount="2000000", responsible_id=demo.m2.id)
    db.commit()
    db.info.pop(NO_DISPATCH)
    assert instances_of(db, "large_deal_routing", entity_id=deal.id) == []
    assert deal_created_event(db, deal.id).dispatched_at is None
    report = dispatcher.dispatch_pending()
    assert len(report.started) == 2  # key client (no) and large deal (yes)
    assert len(instances_of(db, "large_deal_routing", entity_id=deal.id)) == 1
    assert db.get(Deal, deal.id).responsible_id == demo.corporate.id
    assert deal_created_event(db, deal.id).dispatched_at is not None
    again = dispatcher.dispatch_pending()
    assert again.started == [] and again.events == 0
    assert len(tasks_of(db, entity_id=deal.id)) == 1


def test_a_partly_dispatched_event_resumes_where_it_stopped(db, demo, dispatcher, engine):
    db.info[NO_DISPATCH] = True
    deal = create_deal(db, SYSTEM, title="Half", amount="2000000", responsible_id=demo.m2.id)
    db.commit()
    db.info.pop(NO_DISPATCH)
    ev = deal_created_event(db, deal.id)
    [key_client] = [d for d in engine.definitions(db, active=True)
                    if d.key == "key_client_routing"]
    from automation.snapshot import start_data
    from engine.ports import StartRequest
    engine.start(db, key_client, StartRequest(start_data(db, "deal", deal.id, ev), "deal",
                                              deal.id, event_id=ev.id, message="deal.created"))
    db.commit()  # crashed after the first definition
    report = dispatcher.dispatch_pending()
    assert len(report.started) == 1 and any("already started" in s for s in report.skipped)
    assert len(instances_of(db, "key_client_routing", entity_id=deal.id)) == 1
    assert len(instances_of(db, "large_deal_routing", entity_id=deal.id)) == 1


def test_two_dispatchers_racing_start_one_instance(app, db, demo):
    db.info[NO_DISPATCH] = True
    deals = [create_deal(db, SYSTEM, title=f"Race {i}", amount="3000000",
                         responsible_id=demo.m1.id) for i in range(3)]
    db.commit()
    db.info.pop(NO_DISPATCH)
    factory = app.extensions["db_sessionmaker"]
    racers = [Dispatcher(build_engine(), factory) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(d: Dispatcher) -> None:
        try:
            barrier.wait()
            d.dispatch_pending()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    racers[0].dispatch_pending()  # whatever a lost lock left pending
    for deal in deals:
        assert len(instances_of(db, "large_deal_routing", entity_id=deal.id)) == 1
        assert len(instances_of(db, "key_client_routing", entity_id=deal.id)) == 1
        assert len(tasks_of(db, entity_id=deal.id)) == 1
        assert deal_created_event(db, deal.id).dispatched_at is not None


def test_a_process_does_not_retrigger_itself(db, org, engine, dispatcher):
    deploy(db, engine, service_process("prober", message="deal.updated",
                                       operation="crm.update_fields",
                                       params={"fields": '{"probability": 40}'}))
    deal = make_deal(db, org.m1)
    db.commit()
    update_deal(db, SYSTEM, deal.id, title="Changed by a person")
    db.commit()
    # the person's update started it once; its own deal.updated did not start it again
    [inst] = instances_of(db, "prober")
    assert inst.status == "completed" and db.get(Deal, deal.id).probability == 40
    own = db.scalars(select(OutboxEvent).where(
        OutboxEvent.actor_label.like("process prober %"))).one()
    assert own.dispatched_at is not None


def test_processes_triggering_each_other_stop_at_the_cascade_limit(db, org, engine,
                                                                   dispatcher):
    ping = service_process("ping", message="deal.updated", operation="crm.update_fields",
                           params={"fields": '{"probability": 10}'})
    pong = service_process("pong", message="deal.updated", operation="crm.update_fields",
                           params={"fields": '{"probability": 20}'})
    deploy(db, engine, ping, pong)
    deal = make_deal(db, org.m1)
    db.commit()
    update_deal(db, SYSTEM, deal.id, title="Start the ping-pong")
    db.commit()
    total = len(instances_of(db, "ping")) + len(instances_of(db, "pong"))
    # 2 for the person's event, then one hop each until the chain is 5 processes long
    assert 2 < total <= 2 + dispatcher.max_cascade
    stopped = db.scalars(select(OutboxEvent).where(OutboxEvent.last_error.like("%in a row%"))
                         ).all()
    assert stopped and all(e.dispatched_at is not None for e in stopped)
    assert db.scalar(select(func.count()).select_from(OutboxEvent)
                     .where(OutboxEvent.dispatched_at.is_(None))) == 0


def test_definitions_run_in_priority_order_each_seeing_the_last(db, org, engine):
    # "second" (priority 20) only comments when the first one already set the probability
    first = service_process("first", priority=20, operation="crm.add_comment",
                            params={"text": "saw it"}, condition="deal.probability == 70")
    second = service_process("second", priority=10, operation="crm.update_fields",
                             params={"fields": '{"probability": 70}'})
    deploy(db, engine, first, second)
    deal = make_deal(db, org.m1)
    db.commit()
    [a] = instances_of(db, "second", entity_id=deal.id)
    [b] = instances_of(db, "first", entity_id=deal.id)
    assert a.id < b.id
    assert any(h.element_id == "Task_Service" for h in engine.history(db, b.id))


def test_an_unevaluable_condition_is_an_incident_naming_the_flow(db, org, engine):
    deploy(db, engine, service_process("broken", condition="deal.no_such_field > 1"))
    deal = make_deal(db, org.m1)
    db.commit()
    [inst] = instances_of(db, "broken")
    assert inst.status == "incident" and inst.incident_element_id == "Flow_If"
    assert "Flow_If" in inst.incident_message and "no_such_field" in inst.incident_message
    assert deal_created_event(db, deal.id).dispatched_at is not None  # dispatched, not lost


def test_a_failing_start_leaves_the_event_pending_for_the_recovery_loop(db, org, engine,
                                                                        dispatcher,
                                                                        monkeypatch):
    deploy(db, engine, service_process("fragile"))
    calls = {"n": 0}
    real_start = engine.start

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return real_start(*args, **kw)

    monkeypatch.setattr(engine, "start", flaky)
    deal = make_deal(db, org.m1)
    db.commit()
    ev = deal_created_event(db, deal.id)
    assert ev.dispatched_at is None and ev.attempts == 1 and "went away" in ev.last_error
    assert instances_of(db, "fragile") == []
    assert len(dispatcher.dispatch_pending().started) == 1
    assert len(instances_of(db, "fragile")) == 1
    assert deal_created_event(db, deal.id).dispatched_at is not None


def test_deleted_records_start_processes_with_their_last_fields(db, org, engine):
    deploy(db, engine, service_process("on_delete", message="deal.deleted",
                                       operation="crm.notify",
                                       params={"title": "deleted", "user": "m1@test.local"}))
    deal = make_deal(db, org.m1, amount="500")
    db.commit()
    delete_deal(db, SYSTEM, deal.id)
    db.commit()
    [inst] = instances_of(db, "on_delete")
    data = engine.instance_data(db, inst.id)
    assert data["deal"]["amount"] == "500.00" and data["event"]["type"] == "deal.deleted"
    # the record is gone, so the notification cannot be tied to it: an incident, not a crash
    assert inst.status == "incident" and "No deal" in inst.incident_message


def test_inactive_definitions_do_not_start(db, org, engine):
    deploy(db, engine, service_process("paused"))
    engine.deactivate(db, "paused")
    db.commit()
    make_deal(db, org.m1)
    db.commit()
    assert instances_of(db, "paused") == [] and instance_count(db) == 0


def test_a_failing_definition_undoes_only_its_own_start(db, org, engine, dispatcher,
                                                       monkeypatch):
    # One transaction per event, one savepoint per definition: "writer" (first) keeps its
    # instance and its CRM write; "fragile" (second) fails once and is started, alone, by
    # the recovery loop.
    writer = service_process("writer", priority=10, operation="crm.update_fields",
                             params={"fields": '{"probability": 70}'})
    deploy(db, engine, writer, service_process("fragile", priority=20))
    real_start = engine.start
    calls = {"fragile": 0}

    def flaky(session, definition, request, **kw):
        if definition.key == "fragile":
            calls["fragile"] += 1
            if calls["fragile"] == 1:
                real_start(session, definition, request, **kw)  # its rows are written, then …
                raise RuntimeError("lost in the middle")
        return real_start(session, definition, request, **kw)

    monkeypatch.setattr(engine, "start", flaky)
    deal = make_deal(db, org.m1)
    db.commit()
    ev = deal_created_event(db, deal.id)
    assert ev.dispatched_at is None and ev.attempts == 1 and "lost in the middle" in ev.last_error
    assert len(instances_of(db, "writer", entity_id=deal.id)) == 1
    assert instances_of(db, "fragile", entity_id=deal.id) == []  # undone with its savepoint
    assert db.get(Deal, deal.id).probability == 70  # the first one's write stays
    report = dispatcher.dispatch_pending()
    assert len(report.started) == 1 and any("writer (already started)" in s
                                            for s in report.skipped)
    assert len(instances_of(db, "writer", entity_id=deal.id)) == 1
    assert len(instances_of(db, "fragile", entity_id=deal.id)) == 1
    assert deal_created_event(db, deal.id).dispatched_at is not None


def test_an_event_dispatched_meanwhile_is_left_alone(db, org, engine, dispatcher):
    deploy(db, engine, service_process("once"))
    db.info[NO_DISPATCH] = True
    deal = make_deal(db, org.m1)
    db.commit()
    db.info.pop(NO_DISPATCH)
    ev = deal_created_event(db, deal.id)
    assert len(dispatcher.dispatch([ev.id]).started) == 1
    again = dispatcher.dispatch([ev.id])  # e.g. the recovery loop with a stale id list
    assert again.started == [] and again.events == 0
    assert len(instances_of(db, "once", entity_id=deal.id)) == 1


def test_a_busy_database_leaves_the_event_pending_without_counting_an_attempt(app, db, demo,
                                                                                engine):
    """Another transaction holds the lock longer than the dispatcher's lock budget: the event
    is not routed, not marked, and its attempts stay 0 — the recovery loop routes it once the
    database is free (a busy database is no failure of the event)."""
    from crm_models.db import make_engine, make_sessionmaker

    db.info[NO_DISPATCH] = True
    deal = create_deal(db, SYSTEM, title="Busy", amount="2000000", responsible_id=demo.m2.id)
    db.commit()
    db.info.pop(NO_DISPATCH)
    event_id = deal_created_event(db, deal.id).id
    db.rollback()
    impatient = make_engine(app.config["DATABASE_URL"], lock_timeout=0.2)
    dispatcher = Dispatcher(engine, make_sessionmaker(impatient))
    # a writer's connection: on SQLite its BEGIN IMMEDIATE takes the one write lock
    holder = app.extensions["db_engine"].marshrut_writer.connect()
    try:
        lock = "" if holder.dialect.name == "sqlite" else " FOR UPDATE"
        holder.exec_driver_sql(f"SELECT 1 FROM outbox_event WHERE id = {event_id}{lock}")
        report = dispatcher.dispatch([event_id])
        assert report.started == [] and "busy" in report.failed[0]
    finally:
        holder.rollback()
        holder.close()
    ev = db.get(OutboxEvent, event_id)
    assert ev.dispatched_at is None and ev.attempts == 0
    assert dispatcher.dispatch_pending().started
    assert len(instances_of(db, "large_deal_routing", entity_id=deal.id)) == 1
    impatient.dispose()


def _history_of(db, instance):
    return db.scalars(select(ProcessHistory.event).where(ProcessHistory.instance_id == instance.id)
                      .order_by(ProcessHistory.id)).all()


def test_a_pre_filtered_start_keeps_its_history_when_the_next_start_fails(db, demo, engine,
                                                                         monkeypatch):
    # The key-client rule is pre-filtered for this deal: its history rows wait to be written
    # with the large-deal rule's, in that start's savepoint. When that start fails after
    # writing them, its savepoint takes them back — and they are written again after it.
    real_start = engine.start

    def fails_late(session, definition, request, **kw):
        real_start(session, definition, request, **kw)
        raise RuntimeError("failed after its save")

    monkeypatch.setattr(engine, "start", fails_late)
    deal = create_deal(db, SYSTEM, title="Late failure", amount="2500000",
                       responsible_id=demo.m1.id)
    db.commit()
    [key_client] = instances_of(db, "key_client_routing", entity_id=deal.id)
    assert instances_of(db, "large_deal_routing", entity_id=deal.id) == []
    assert _history_of(db, key_client)[0] == "started" and "finished" in _history_of(
        db, key_client)
    assert "failed after its save" in deal_created_event(db, deal.id).last_error


def test_pre_filtered_and_started_histories_are_written_together_in_order(db, demo):
    deal = create_deal(db, SYSTEM, title="Both rules", amount="2500000",
                       responsible_id=demo.m1.id)
    db.commit()
    [key_client] = instances_of(db, "key_client_routing", entity_id=deal.id)
    [large] = instances_of(db, "large_deal_routing", entity_id=deal.id)
    first, last = _history_of(db, key_client), _history_of(db, large)
    assert first[0] == "started" and first[-1] == "finished" and last[0] == "started"
    assert db.scalar(select(func.max(ProcessHistory.id)).where(
        ProcessHistory.instance_id == key_client.id)) < db.scalar(select(func.min(
            ProcessHistory.id)).where(ProcessHistory.instance_id == large.id))
