"""Server-rendered pages (Jinja + htmx) over the CRM services.

Every view acts as ``web.auth.current_actor()`` through ``crm_models.services`` and commits
``get_db()`` after a write. Pages work without JavaScript; the bundle built from ``editor/``
(``web/static/dist/crm.js``) only enhances them, and is left out when it was not built.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, g, redirect, request, session, url_for

from crm_models.errors import ValidationFailed
from crm_models.fields import SCHEMAS
from crm_models.services.org import update_user

from ..auth import _safe_next, require_actor
from ..database import get_db

bp = Blueprint("pages", __name__)
BUNDLE = Path(__file__).resolve().parent.parent / "static" / "dist" / "crm.js"
#: Views an anonymous visitor may use.
PUBLIC_ENDPOINTS = {"pages.set_locale"}


@bp.before_request
def _require_login() -> Any:
    if g.get("user") is None and request.endpoint not in PUBLIC_ENDPOINTS:
        return redirect(url_for("login", next=request.full_path.rstrip("?")))
    return None


@bp.post("/locale")
def set_locale() -> Any:
    """Switch the interface language: on the user when signed in, else in the session."""
    chosen = request.form.get("locale", "")
    if chosen not in ("ru", "en"):
        raise ValidationFailed({"locale": "must be ru or en"})
    session["locale"] = chosen
    if g.get("user") is not None:
        update_user(get_db(), require_actor(), g.user.id, locale=chosen)
        get_db().commit()
    return redirect(_safe_next(request.form.get("next")))


def _template_helpers() -> dict[str, Any]:
    from ..workspace.labels import process_title
    from . import format as fmt
    from .menu import menu_for
    from .messages import ONE, translate

    return {
        "money": fmt.money, "when": fmt.when, "day": fmt.day, "field_label": fmt.field_label,
        "stage_name": fmt.stage_name, "enum_label": fmt.enum_label, "channels": fmt.channels,
        "card_url": fmt.card_url, "display": fmt.display, "record_link": fmt.link, "record_title": fmt.record_title,
        "lines": fmt.escape_lines, "role_name": fmt.role_name, "translate_error": translate, "LEVEL_LABELS": fmt.LEVEL_LABELS,
        "ENTITY_LABELS": fmt.ENTITY_LABELS, "ACTION_LABELS": fmt.ACTION_LABELS,
        "FLAG_LABELS": fmt.FLAG_LABELS, "STATUS_LABELS": fmt.STATUS_LABELS,
        "SOURCE_LABELS": fmt.SOURCE_LABELS, "CHANNEL_TYPE_LABELS": fmt.CHANNEL_TYPE_LABELS,
        "CURRENCIES": fmt.CURRENCIES, "DUPLICATE_KEY_LABELS": fmt.DUPLICATE_KEY_LABELS,
        "PLURAL": fmt.PLURAL,
        "cfg_fields": lambda entity: SCHEMAS[entity], "main_menu": menu_for,
        "process_title": process_title, "record_kind": lambda e: str(ONE.get(e, e)),
    }


def init_app(app: Flask) -> None:
    from . import (  # noqa: F401  (they add routes to bp)
        admin,
        cards,
        deals,
        duplicates,
        home,
        invoice_edit,
        invoices,
        listing,
        pickers,
        products,
        records,
        reports,
    )

    app.jinja_env.globals.update(_template_helpers())
    app.jinja_env.add_extension("jinja2.ext.loopcontrols")

    @app.context_processor
    def _layout() -> dict[str, Any]:
        return {"has_bundle": BUNDLE.exists(), "languages": ("ru", "en")}

    app.register_blueprint(bp)
    app.register_blueprint(admin.bp)
