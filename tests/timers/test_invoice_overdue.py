"""Invoices past their due date become ``overdue`` by a periodic job of the timer scheduler,
with one ``invoice.overdue`` each — also when several sweepers run at once (threads on both
databases; real ``flask worker`` processes on PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter

from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.invoices import Invoice
from crm_models.services import invoices as inv_svc
from crm_models.services.product_rows import set_product_rows
from tests.factories import SYSTEM, make_deal
from web.invoice_jobs import JOB_ID, sweep_overdue

from .support import wait_until
from .test_workers import pg_url, workers  # noqa: F401 - fixtures

TODAY = dt.date(2030, 6, 10)


def _sent_invoices(db, org, n, due):
    deal = make_deal(db, org.m1)
    set_product_rows(db, SYSTEM, "deal", deal.id, [{"name": "Работы", "price": "100"}])
    ids = []
    for _ in range(n):
        inv = inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, due_on=due,
                                     today=dt.date(2030, 6, 1))
        inv_svc.change_invoice_stage(db, SYSTEM, inv.id, "sent")
        ids.append(inv.id)
    db.commit()
    return ids


def _overdue_events(db):
    db.rollback()
    return Counter(db.scalars(select(OutboxEvent.entity_id).where(
        OutboxEvent.event_type == "invoice.overdue")))


def test_the_job_is_on_the_scheduler(app):
    scheduler = app.extensions["timer_scheduler"]
    assert scheduler.periodic[JOB_ID].every == app.config["INVOICE_OVERDUE_SECONDS"]


def test_sweep_moves_only_past_due_sent_invoices(app, db, org):
    late = _sent_invoices(db, org, 2, "2030-06-09")
    on_time = _sent_invoices(db, org, 1, "2030-06-10")
    draft = inv_svc.create_invoice(db, SYSTEM, deal_id=db.get(Invoice, late[0]).deal_id,
                                   due_on="2030-06-02", today=dt.date(2030, 6, 1))
    db.commit()
    assert sorted(sweep_overdue(app, TODAY)) == sorted(late)
    assert sweep_overdue(app, TODAY) == []  # nothing twice
    assert _overdue_events(db) == Counter(late)
    stages = {i.id: i.stage for i in db.scalars(select(Invoice))}
    assert [stages[i] for i in late] == ["overdue", "overdue"]
    assert stages[on_time[0]] == "sent" and stages[draft.id] == "draft"


def test_concurrent_sweeps_move_each_invoice_once(app, db, org):
    ids = _sent_invoices(db, org, 30, "2030-06-01")
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def sweep() -> None:
        try:
            barrier.wait()
            sweep_overdue(app, TODAY)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert _overdue_events(db) == Counter(ids)


def test_worker_processes_mark_overdue_exactly_once(app, db, org, workers):  # noqa: F811
    past = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    deal = make_deal(db, org.m1)
    set_product_rows(db, SYSTEM, "deal", deal.id, [{"name": "Работы", "price": "100"}])
    ids = []
    for _ in range(25):
        inv = inv_svc.create_invoice(db, SYSTEM, deal_id=deal.id, due_on=past,
                                     issued_on=(dt.date.today() - dt.timedelta(days=10)))
        inv_svc.change_invoice_stage(db, SYSTEM, inv.id, "sent")
        ids.append(inv.id)
    db.commit()
    for name in ("w1", "w2", "w3"):
        workers(name, extra={"MARSHRUT_INVOICE_OVERDUE_SECONDS": "0.2"})
    wait_until(lambda: sum(_overdue_events(db).values()) >= len(ids), timeout=120, every=0.2)
    wait_until(lambda: all(workers.running(n) for n in ("w1", "w2", "w3")), timeout=60)
    time.sleep(1.5)  # several more sweeps of every worker: none adds an event
    assert _overdue_events(db) == Counter(ids)
    db.rollback()
    assert {i.stage for i in db.scalars(select(Invoice))} == {"overdue"}
