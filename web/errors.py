"""The one place that turns errors into HTTP responses.

API paths get ``{"error": {"code", "message", "fields"}}`` with a 4xx status; pages get an
error page. Nobody ever sees a traceback.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from crm_models.db import Busy, lock_failure
from crm_models.errors import CrmError
from engine.errors import DefinitionInvalid, EngineError

log = logging.getLogger(__name__)
DUPLICATE = ("Another record already has this value (or was saved at the same moment); "
             "nothing was saved. Reload the page and try again.")


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, code: str, message: str,
                   fields: dict[str, str] | None = None,
                   extra: dict[str, Any] | None = None) -> Any:
    if wants_json():
        body = {"code": code, "message": message, "fields": fields or {}, **(extra or {})}
        return jsonify({"error": body}), status
    return render_template("error.html", status=status, code=code, message=message,
                           fields=fields or {}), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CrmError)
    def _crm(exc: CrmError) -> Any:
        response, status = error_response(exc.status, exc.code, exc.message, exc.fields)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response = make_response(response, status)
            response.headers["Retry-After"] = str(retry_after)
        return response, status

    @app.errorhandler(EngineError)
    def _engine(exc: EngineError) -> Any:
        extra = None
        if isinstance(exc, DefinitionInvalid):  # the editor marks each faulty shape
            extra = {"errors": [{"element_id": e.element_id, "message": e.message}
                                for e in exc.errors]}
        return error_response(exc.status, exc.code, exc.message, exc.fields, extra)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        return error_response(400, "csrf_failed", "The form expired or lacks its CSRF token; "
                              "reload the page and try again.")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        code = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if not wants_json() and message == type(exc).description:
            message = ""  # werkzeug's stock English: the page explains the status itself
        return error_response(exc.code or 500, code, message)

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> Any:
        # Two writers raced past a service's uniqueness check (or a constraint the service
        # does not check): nothing was saved, and that is the user's to hear, not a 500.
        if lock_failure(exc):
            return busy_response(exc)
        log.warning("integrity error on %s %s: %s", request.method, request.path, exc.orig)
        return error_response(409, "conflict", DUPLICATE)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        if lock_failure(exc):
            return busy_response(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error",
                              "Something went wrong on our side; the change was not saved.")


def busy_response(exc: Exception) -> Any:
    """The database stayed busy for the request's whole lock budget: nothing was written.
    503 with Retry-After (Bitrix24 REST: its QUERY_LIMIT_EXCEEDED shape)."""
    log.warning("busy on %s %s: %s", request.method, request.path, exc)
    retry_after = str(Busy.retry_after)
    if request.path.startswith("/rest/"):
        from .bitrix.envelope import BitrixError
        from .bitrix.envelope import error_response as bitrix_error

        response = bitrix_error(BitrixError(503, "QUERY_LIMIT_EXCEEDED",
                                            "The server is busy; try again in a moment"))
        response.headers["Retry-After"] = retry_after
        return response
    body, status = error_response(503, "busy", "The server is busy; nothing was saved. "
                                  "Try again in a moment.")
    return body, status, {"Retry-After": retry_after}
