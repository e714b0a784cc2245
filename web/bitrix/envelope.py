"""Bitrix24's response envelopes: ``{"result", ["next", "total",] "time"}`` on success,
``{"error", "error_description"}`` with Bitrix24's HTTP status on failure."""
from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Response

from integrations.bitrix_fields import _tz

PAGE = 50
#: Bitrix24 resets its per-method run-time budget every 10 minutes.
OPERATING_WINDOW = 600


class BitrixError(Exception):
    """An error answer: HTTP ``status``, Bitrix24 ``code`` (may be "") and a description."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.code, "error_description": self.description}


@dataclass
class ListResult:
    """A page of a list method: the rows, ``total`` (None with ``start=-1``) and ``next``."""

    items: Any  # a list; a few methods wrap it, e.g. {"categories": [...]}
    total: int | None
    next: int | None


def time_block(started: float, tz: str, *, finished: float | None = None) -> dict[str, Any]:
    """The ``time`` object every answer carries (all keys the clients index directly)."""
    finished = time.time() if finished is None else finished
    zone = _tz(tz)
    duration = max(0.0, finished - started)
    return {
        "start": started,
        "finish": finished,
        "duration": duration,
        "processing": duration,
        "date_start": dt.datetime.fromtimestamp(started, zone).isoformat(timespec="seconds"),
        "date_finish": dt.datetime.fromtimestamp(finished, zone).isoformat(timespec="seconds"),
        "operating_reset_at": math.floor(started) + OPERATING_WINDOW,
        "operating": duration,
    }


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    # Our own dumps: Flask's provider sorts keys, and field order is part of the look of it.
    return Response(json.dumps(body, ensure_ascii=False, default=_default), status=status,
                    mimetype="application/json")


def success_body(result: Any, started: float, tz: str) -> dict[str, Any]:
    body: dict[str, Any]
    if isinstance(result, ListResult):
        body = {"result": result.items}
        if result.next is not None:
            body["next"] = result.next
        if result.total is not None:
            body["total"] = result.total
    else:
        body = {"result": result}
    body["time"] = time_block(started, tz)
    return body


def error_response(err: BitrixError) -> Response:
    response = json_response(err.body(), err.status)
    if err.status == 503:  # rate limit or a busy database: clients may come back shortly
        response.headers["Retry-After"] = "2"
    return response
