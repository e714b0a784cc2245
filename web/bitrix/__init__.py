"""The Bitrix24-compatible REST API (``/rest/<user_id>/<secret>/<method>``), its profile and
admin pages, and the wiring of the outgoing-webhook delivery worker.

Another adapter over the same CRM service functions as the pages and the native API: calls run
with the webhook owner's rights, validation and outbox events. Token-authenticated, so the
REST blueprint is exempt from CSRF.
"""
from __future__ import annotations

from flask import Flask

from integrations.delivery import DeliveryThread, DeliveryWorker, watch_outbox_commits

from . import (  # noqa: F401  (each module registers its methods)
    batch,
    bizproc_methods,
    catalog_methods,
    crm_methods,
    invoice_methods,
    misc_methods,
    org_methods,
)
from .pages import bp as pages_bp
from .views import bp as rest_bp


def init_app(app: Flask) -> None:
    from ..auth import csrf

    app.register_blueprint(rest_bp)
    app.register_blueprint(pages_bp)
    csrf.exempt(rest_bp)
    cfg = app.config
    worker = DeliveryWorker(app.extensions["db_sessionmaker"],
                            guard=app.extensions["url_guard"],
                            domain=cfg.get("BITRIX_PORTAL_DOMAIN") or "localhost",
                            timeout=float(cfg["WEBHOOK_DELIVERY_TIMEOUT"]))
    app.extensions["bitrix_delivery"] = worker
    in_process = cfg.get("WEBHOOK_DELIVERY_THREAD")
    if in_process is None:
        in_process = cfg.get("RUN_SCHEDULER", False)
    if in_process:
        thread = DeliveryThread(worker)
        app.extensions["bitrix_delivery_thread"] = thread
        watch_outbox_commits(app.extensions["db_sessionmaker"], thread.wake)
        # Started with the serving process (``web.scheduling``), never by CLI commands.
        app.extensions.setdefault("background_starters", []).append(thread.start)
