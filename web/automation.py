"""Wires the BPMN engine and the outbox dispatcher into the Flask app.

``init_app(app)`` builds one ``Engine`` (``automation.setup.build_engine``) and one
``Dispatcher`` on the app's sessionmaker, and exposes them as ``app.extensions["engine"]`` and
``app.extensions["dispatcher"]``. With ``DISPATCH_AFTER_COMMIT`` (default on) every session of
the app dispatches the outbox events it wrote right after it commits, so a request that
creates a deal returns with the deal already routed (see ``automation.dispatcher``).

With ``RUN_SCHEDULER`` a daemon thread, started with the serving process (``web.scheduling``
decides: a WSGI server or ``flask run``, never CLI commands such as ``init-db``), runs the
recovery loop: ``dispatch_pending`` at once and then
every ``DISPATCH_INTERVAL`` seconds, together with the engine's due service-call retries.
``flask dispatch`` does the same from the command line.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext
from flask_babel import get_locale, gettext

from automation import models  # noqa: F401  (the bridge's tables on crm_models' Base)
from automation.condition_types import CrmConditionTypes
from automation.dispatcher import Dispatcher, DispatchReport, install_after_commit
from automation.setup import build_engine
from engine.calendar import BusinessCalendar
from engine.runtime import Engine

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 10.0


def init_app(app: Flask) -> None:
    limit = app.config.get("INSTANCE_DATA_LIMIT_BYTES")
    engine = build_engine(calendar=BusinessCalendar.from_config(
        app.config.get("BUSINESS_CALENDAR")), url_guard=app.extensions.get("url_guard"),
        data_limit=int(limit) if limit else None,
        conditions=CrmConditionTypes(translate=gettext, language=lambda: str(get_locale() or "")))
    factory = app.extensions["db_sessionmaker"]
    dispatcher = Dispatcher(engine, factory)
    app.extensions["engine"] = engine
    app.extensions["dispatcher"] = dispatcher
    if app.config.get("DISPATCH_AFTER_COMMIT", True):
        install_after_commit(factory, dispatcher)
    if app.config.get("RUN_SCHEDULER", True):
        _install_background_loop(app, engine, dispatcher)
    app.cli.add_command(dispatch_command)


def engine_of(app: Flask) -> Engine:
    return app.extensions["engine"]


def run_recovery_once(app: Flask) -> DispatchReport:
    """Dispatch what is pending and run due service-call retries (one pass)."""
    report: DispatchReport = app.extensions["dispatcher"].dispatch_pending()
    with app.extensions["db_sessionmaker"]() as session:
        if app.extensions["engine"].run_due_retries(session):
            session.commit()
    return report


def _install_background_loop(app: Flask, engine: Engine, dispatcher: Dispatcher) -> None:
    started = threading.Event()
    stop = threading.Event()
    app.extensions["dispatcher_stop"] = stop
    interval = float(app.config.get("DISPATCH_INTERVAL", DEFAULT_INTERVAL))

    def loop() -> None:
        while not stop.is_set():
            try:
                run_recovery_once(app)
            except Exception:  # noqa: BLE001 - keep the loop alive; the next pass retries
                log.exception("the dispatch recovery loop failed")
            stop.wait(interval)

    def start_once() -> None:
        if not started.is_set():
            started.set()
            threading.Thread(target=loop, name="marshrut-dispatch", daemon=True).start()

    app.extensions.setdefault("background_starters", []).append(start_once)


@click.command("dispatch")
@with_appcontext
@click.option("--loop", is_flag=True, help="Keep running, every --every seconds.")
@click.option("--every", default=DEFAULT_INTERVAL, show_default=True)
def dispatch_command(loop: bool, every: float) -> None:
    """Start processes for CRM events left undispatched (after a crash or with the hook off)."""
    from flask import current_app

    app: Any = current_app
    stop = threading.Event()
    while True:
        report = run_recovery_once(app)
        click.echo(f"{report.events} events dispatched, {len(report.started)} processes "
                   f"started, {len(report.failed)} failures")
        for line in report.failed:
            click.echo(f"  failed: {line}")
        if not loop or stop.wait(every):
            break
