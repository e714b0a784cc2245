"""The Flask adapters over the CRM services and the engine: pages, the REST API, auth.

A separate package (not in ``app.py``) because ``crm_models`` and ``engine`` must stay free of
Flask: everything that knows about requests lives here.
"""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from integrations.url_guard import UrlGuard

    from . import api, auth, automation, bitrix, editor, errors, pages, security, workspace

    # Outgoing URLs (webhooks, webhook.call): one guard, read from the configuration once.
    app.extensions["url_guard"] = UrlGuard.from_config(app.config.get("OUTGOING_URL_ALLOWLIST"))
    security.init_app(app)
    errors.init_app(app)
    automation.init_app(app)
    auth.init_app(app)
    api.init_app(app)
    pages.init_app(app)
    bitrix.init_app(app)
    editor.init_app(app)
    workspace.init_app(app)
    from .database import retry_units_of_work

    retry_units_of_work(app)  # last: wraps every view registered above
