"""The timer that moves invoices past their due date to ``overdue`` (``invoice.overdue``).

A periodic job of the app's timer scheduler, so it runs wherever timers run: in the app
process (embedded) or in each ``flask worker``. Several workers may sweep at once: each
invoice is moved by ``change_invoice_stage`` under its row lock (SQLite: the write lock), and
the second sweeper finds it overdue already, so one invoice gives one ``invoice.overdue``.
"""
from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from flask import Flask

from crm_models.permissions import system_actor
from crm_models.services.invoices import mark_overdue_invoices

log = logging.getLogger(__name__)
JOB_ID = "marshrut-invoices-overdue"


def sweep_overdue(app: Flask, today: dt.date | None = None) -> list[int]:
    """One pass: the ids of invoices moved to overdue. ``today`` in the business timezone
    (an invoice due on the 5th is overdue from the 6th there)."""
    zone = ZoneInfo(app.config.get("BABEL_DEFAULT_TIMEZONE") or "Europe/Moscow")
    day = today or dt.datetime.now(zone).date()
    with app.extensions["db_sessionmaker"](write=True) as session:
        moved = mark_overdue_invoices(session, system_actor("invoice timer"), day)
        session.commit()
    if moved:
        log.info("invoices now overdue: %s", moved)
    return moved


def init_app(app: Flask) -> None:
    every = float(app.config.get("INVOICE_OVERDUE_SECONDS") or 300)
    app.extensions.setdefault("periodic_jobs", []).append(
        (JOB_ID, lambda: sweep_overdue(app), every))
