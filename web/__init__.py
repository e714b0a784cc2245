"""The Flask adapters over the CRM services and the engine: pages, the REST API, auth.

A separate package (not in ``app.py``) because ``crm_models`` and ``engine`` must stay free of
Flask: everything that knows about requests lives here.
"""
from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from strictnum import MAX_ROW_ID, at_most_regex


class AsciiIntConverter(IntegerConverter):
    """``<int:…>`` in every route: ASCII digits only (werkzeug's own takes ``\\d``, so
    ``/deals/١`` was deal 1), no leading zeros, at most ``MAX_ROW_ID`` (every such part of a
    URL is an id or a number stored in an INTEGER column); anything else does not match the
    pattern (→ 404)."""

    regex = f"(?:0|{at_most_regex(MAX_ROW_ID)})"

    def __init__(self, url_map: Any, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = None, signed: bool = False) -> None:
        if signed:
            raise ValueError("signed <int:…> URL parts are not used here")
        super().__init__(url_map, fixed_digits, min, MAX_ROW_ID if max is None else max)


def init_app(app: Flask) -> None:
    from integrations.url_guard import UrlGuard

    app.url_map.converters["int"] = AsciiIntConverter  # before any route is added
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
    from . import mail

    mail.init_app(app)
    from . import exchange1c, imports

    imports.init_app(app)
    exchange1c.init_app(app)
    from .database import retry_units_of_work

    retry_units_of_work(app)  # last: wraps every view registered above
