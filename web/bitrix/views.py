"""The REST endpoint ``/rest/<user_id>/<secret>/<method>[.json]``: authenticate the webhook,
take a token from its rate-limit bucket, parse the parameters, run the method, answer in
Bitrix24's envelope. Every failure is a Bitrix24-shaped error, never an HTML page."""
from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, request
from werkzeug.exceptions import HTTPException

from crm_models.db import utcnow
from crm_models.errors import PermissionDenied
from crm_models.permissions import actor_for
from integrations import webhooks

from ..database import get_db
from .envelope import BitrixError, error_response, json_response, success_body
from .params import request_params
from .registry import CallContext, invoke, lookup, to_bitrix_error

bp = Blueprint("bitrix", __name__)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
NO_AUTH = BitrixError(401, "NO_AUTH_FOUND", "Wrong authorization data")


def _method_name(raw: str) -> str:
    name = raw.strip()
    lowered = name.lower()
    if lowered.endswith(".xml"):
        raise BitrixError(400, "INVALID_REQUEST", "XML answers are not supported; use .json")
    return name[:-5] if lowered.endswith(".json") else name


@bp.route("/rest/<user_id>/<secret>/<path:method_name>", methods=METHODS)
def call(user_id: str, secret: str, method_name: str) -> Any:
    started = time.time()
    tz = "UTC"
    db = get_db()
    try:
        if request.method not in ("GET", "POST"):
            raise BitrixError(405, "ERROR_METHOD_NOT_ALLOWED", "Use GET or POST")
        db.rollback()  # no read transaction may linger before the bucket's write below
        hook = webhooks.authenticate(db, user_id, secret)
        if hook is None:
            raise NO_AUTH
        tz = hook.user.timezone or tz
        cfg = current_app.config
        allowed = webhooks.admit(db, hook.id, now=utcnow(),
                                 rate=float(cfg["BITRIX_RATE_PER_SECOND"]),
                                 burst=float(cfg["BITRIX_RATE_BURST"]))
        db.commit()
        if not allowed:
            raise BitrixError(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        name = _method_name(method_name)
        lookup(name)
        params = request_params(request)
        try:
            actor = actor_for(db, hook.user)
        except PermissionDenied:
            raise NO_AUTH from None
        ctx = CallContext(session=db, actor=actor, user=hook.user, webhook=hook,
                          config=dict(cfg))
        result = invoke(ctx, name, params)
        return json_response(success_body(result, started, tz))
    except BitrixError as err:
        return error_response(err)
    except HTTPException as exc:  # e.g. a body over MAX_CONTENT_LENGTH
        db.rollback()
        return error_response(BitrixError(exc.code or 400, "INVALID_REQUEST",
                                          exc.description or exc.name))
    except Exception as exc:  # anything else: logged, answered in Bitrix24's shape
        db.rollback()
        return error_response(to_bitrix_error(exc, None))


@bp.route("/rest/", methods=METHODS)
@bp.route("/rest/<path:anything>", methods=METHODS)
def unknown(anything: str = "") -> Any:
    """Paths under /rest/ that name no webhook and method."""
    return error_response(NO_AUTH)
