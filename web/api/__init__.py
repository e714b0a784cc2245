"""REST API under /api/v1: JSON adapters over the CRM services, the org chart and auth.

Every view calls a ``crm_models.services`` function with ``web.auth.current_actor()`` and
commits the request's session after a successful write. Errors are always
``{"error": {"code", "message", "fields"}}`` (``web.errors``). ``GET /api/v1/openapi.json``
describes every route registered here.
"""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    # The route modules attach their views to ``bp`` on import; importing them here rather
    # than at the top avoids a circular import (they import ``bp``), and must happen before
    # the blueprint's first registration. One line per feature module.
    from . import (  # noqa: F401
        auth,
        catalog,
        common,
        crm,
        editor,
        invoices,
        mail,
        openapi,
        orders,
        org,
        processes,
        timeline,
    )

    app.url_map.converters["id"] = common.IdConverter
    auth.init_app(app)
    app.register_blueprint(bp)
