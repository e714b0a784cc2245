"""Where timers fire: in the app process (embedded) or in ``flask worker`` processes.

``init_app(app)`` builds the app's :class:`~engine.scheduler.TimerScheduler` (exposed as
``app.extensions["timer_scheduler"]``) and registers ``flask worker``. Whether it starts:

* Embedded set-up (one process, SQLite or PostgreSQL): with ``RUN_SCHEDULER`` (default on) it
  starts with the app — under a WSGI server or ``flask run`` — but never under ``TESTING``,
  never in other ``flask`` commands (``init-db`` …), never in ``flask run``'s reloader parent.
* Scaled out on PostgreSQL: web processes run with ``MARSHRUT_RUN_SCHEDULER=false`` and start
  none; ``flask --app app worker`` processes (as many as wanted) run it, together with the
  outbox recovery loop, service-call retries and the webhook delivery thread.

At most one scheduler runs per process, however many apps it creates.
"""
from __future__ import annotations

import functools
import logging
import os
import signal
import threading
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask.helpers import get_debug_flag
from werkzeug.serving import is_running_from_reloader

from engine.scheduler import TimerRunner, TimerScheduler, default_worker_id, install_wakeup

log = logging.getLogger(__name__)
_process_lock = threading.Lock()
_process_scheduler: dict[int, TimerScheduler] = {}  # pid → the one running in this process


def init_app(app: Flask) -> None:
    cfg = app.config
    writer = functools.partial(app.extensions["db_sessionmaker"], write=True)
    runner = TimerRunner(app.extensions["engine"], writer,
                         worker_id=default_worker_id(), lease=float(cfg["TIMER_LEASE_SECONDS"]),
                         batch=int(cfg["TIMER_BATCH"]))
    scheduler = TimerScheduler(runner, poll=float(cfg["TIMER_POLL_SECONDS"]))
    for job_id, fn, every in app.extensions.get("periodic_jobs", ()):
        scheduler.add_periodic(job_id, fn, every)  # added before the scheduler may start
    app.extensions["timer_scheduler"] = scheduler
    install_wakeup(app.extensions["db_sessionmaker"], scheduler)
    app.cli.add_command(worker_command)
    if embedded_scheduler_wanted(app):
        start_background(app)


def start_background(app: Flask) -> None:
    """Start this process's background work at once — timers, the outbox recovery loop
    (which also dispatches what a crash left undispatched), webhook delivery — not at the
    first request: after a restart pending work must not wait for a visitor. Safe in every
    process of a scaled-out set-up: timers are claimed under a lease, an event is
    dispatched under its row lock, a delivery is sent under its own lease."""
    if start_in_process(app.extensions["timer_scheduler"]):
        for start in app.extensions.get("background_starters", ()):
            start()
    app.extensions["stop_background"] = lambda: stop_background(app)


def stop_background(app: Flask) -> None:
    """Stop what :func:`start_background` started, before the interpreter shuts down (the
    WSGI server's worker-exit hook calls it): a scheduler tick submitted while Python tears
    its thread pools down would fail noisily."""
    stop_in_process(app.extensions["timer_scheduler"])
    delivery = app.extensions.get("bitrix_delivery_thread")
    if delivery is not None:
        delivery.stop()
    stop = app.extensions.get("dispatcher_stop")
    if stop is not None:
        stop.set()
    mail = app.extensions.get("mail_scheduler")
    if mail is not None:
        mail.stop()
    for stopper in app.extensions.get("background_stoppers", ()):
        stopper()


def embedded_scheduler_wanted(app: Flask) -> bool:
    """See the module docstring; decided once, when the app is created."""
    if not app.config.get("RUN_SCHEDULER") or app.config.get("TESTING"):
        return False
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return True  # a WSGI server or a script: the app serves requests
    if ctx.info_name != "run":
        return False  # other commands load the app while their group resolves them
    reload = ctx.params.get("reload")
    if reload is None:  # as ``flask run`` decides it
        reload = get_debug_flag()
    return not reload or is_running_from_reloader()


def start_in_process(scheduler: TimerScheduler) -> bool:
    """Start ``scheduler`` unless one already runs in this process; True if started."""
    with _process_lock:
        current = _process_scheduler.get(os.getpid())
        if current is not None and current.running:
            return current is scheduler
        scheduler.start()
        _process_scheduler[os.getpid()] = scheduler
        return True


def stop_in_process(scheduler: TimerScheduler) -> None:
    with _process_lock:
        scheduler.shutdown()
        if _process_scheduler.get(os.getpid()) is scheduler:
            del _process_scheduler[os.getpid()]


@click.command("worker")
@click.option("--id", "worker_id", default=None,
              help="A name for this worker (default host:pid), shown on the timers page.")
@with_appcontext
def worker_command(worker_id: str | None) -> None:
    """Fire timers and scheduled starts until stopped (SIGTERM or Ctrl+C).

    Also dispatches outbox events left pending, retries failed service calls, delivers
    outgoing webhooks, sends queued e-mails and imports new ones: everything a web process
    started with MARSHRUT_RUN_SCHEDULER=false leaves to the workers.
    """
    from .automation import DEFAULT_INTERVAL, run_recovery_once

    app: Any = current_app._get_current_object()  # type: ignore[attr-defined]
    scheduler: TimerScheduler = app.extensions["timer_scheduler"]
    if worker_id:
        scheduler.runner.worker_id = worker_id[:100]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if not start_in_process(scheduler):
        raise click.ClickException("a timer scheduler already runs in this process")
    interval = float(app.config.get("DISPATCH_INTERVAL", DEFAULT_INTERVAL))

    def recovery() -> None:
        while not stop.is_set():
            try:
                run_recovery_once(app)
            except Exception:  # noqa: BLE001 - the next pass retries
                log.exception("the worker's recovery pass failed")
            stop.wait(interval)

    threading.Thread(target=recovery, name="marshrut-recovery", daemon=True).start()
    delivery = app.extensions.get("bitrix_delivery_thread")
    if delivery is not None and not delivery.running:
        delivery.start()
    mail = app.extensions.get("mail_scheduler")
    if mail is not None:
        mail.start()  # sends queued e-mails, imports new ones (leases keep workers apart)
    imports = app.extensions.get("import_worker")
    if imports is not None:
        imports.start()  # import jobs: claimed under a lease, never run by two workers
    click.echo(f"worker {scheduler.runner.worker_id} firing timers; stop with Ctrl+C",
               err=True)
    while not stop.wait(0.5):
        pass
    stop_in_process(scheduler)
    if delivery is not None:
        delivery.stop()
    if mail is not None:
        mail.stop()
    if imports is not None:
        imports.stop()
    click.echo(f"worker {scheduler.runner.worker_id} stopped", err=True)
