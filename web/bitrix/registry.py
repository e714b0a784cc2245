"""The Bitrix24 methods by name, with their scope, and the one place that turns our errors into
Bitrix24 error answers.

A method is a function ``(ctx, params) -> result`` registered with ``@method(name, scope)``;
``register`` refuses duplicates. ``legacy`` marks the old ``crm.*`` methods, whose 400 errors
carry an empty code, as Bitrix24's do.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from crm_models.db import lock_failure
from crm_models.errors import Conflict, CrmError, NotFound, PermissionDenied, ValidationFailed
from crm_models.org import User
from crm_models.permissions import Actor
from engine.errors import EngineError
from integrations.models import IncomingWebhook

from .envelope import BitrixError

log = logging.getLogger(__name__)


@dataclass
class CallContext:
    """Everything a method needs: the session, the webhook owner's rights and preferences."""

    session: Session
    actor: Actor
    user: User
    webhook: IncomingWebhook
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def tz(self) -> str:
        return self.user.timezone or "Europe/Moscow"

    @property
    def locale(self) -> str:
        return self.user.locale or "ru"


Handler = Callable[[CallContext, dict[str, Any]], Any]


@dataclass(frozen=True)
class Method:
    name: str
    scope: str | None  # None: any webhook may call it
    handler: Handler
    legacy: bool = False


METHODS: dict[str, Method] = {}


def register(m: Method) -> None:
    if m.name in METHODS:
        raise ValueError(f"Bitrix method {m.name} is registered twice")
    METHODS[m.name] = m


def method(name: str, scope: str | None, *, legacy: bool = False) -> Callable[[Handler], Handler]:
    def decorate(fn: Handler) -> Handler:
        register(Method(name.lower(), scope, fn, legacy))
        return fn

    return decorate


def lookup(name: str) -> Method:
    m = METHODS.get(name.lower())
    if m is None:
        raise BitrixError(404, "ERROR_METHOD_NOT_FOUND", f"Method '{name[:80]}' not found")
    return m


def check_scope(ctx: CallContext, m: Method) -> None:
    if m.scope is not None and m.scope not in (ctx.webhook.scopes or []):
        raise BitrixError(403, "insufficient_scope",
                          f"The request requires higher privileges than provided by the "
                          f"webhook token (scope '{m.scope}')")


def describe(exc: CrmError) -> str:
    if not exc.fields:
        return exc.message
    details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
    return f"{exc.message}. {details}" if isinstance(exc, ValidationFailed) else \
        f"{exc.message} ({details})"

UNIT_RETRIES = 3  # a method that lost a race (deadlock, stale snapshot) runs again


def to_bitrix_error(exc: Exception, m: Method | None) -> BitrixError:
    """Our exception as Bitrix24 would answer it. Unexpected ones are logged and become
    ``INTERNAL_SERVER_ERROR``: a client never sees a traceback."""
    legacy = m is not None and m.legacy
    if isinstance(exc, BitrixError):
        return exc
    if isinstance(exc, ValidationFailed):
        return BitrixError(400, "" if legacy else "INVALID_ARG_VALUE", describe(exc))
    if isinstance(exc, NotFound):
        return BitrixError(400, "" if legacy else "NOT_FOUND", describe(exc))
    if isinstance(exc, PermissionDenied):
        if legacy:
            return BitrixError(400, "", f"Access denied. {exc.message}")
        return BitrixError(403, "ACCESS_DENIED", describe(exc))
    if isinstance(exc, Conflict):
        return BitrixError(400, "" if legacy else "ERROR_CONFLICT", describe(exc))
    if isinstance(exc, CrmError):
        return BitrixError(400, "" if legacy else "ERROR_CORE", describe(exc))
    if isinstance(exc, EngineError):
        return BitrixError(403 if exc.status == 403 else 400, exc.code.upper(), str(exc))
    if lock_failure(exc):  # the database stayed busy: nothing was saved, try again later
        log.warning("busy in Bitrix method %s: %s", m.name if m else "?", exc)
        return BitrixError(503, "QUERY_LIMIT_EXCEEDED",
                           "The server is busy; the change was not saved, try again")
    log.exception("unexpected error in Bitrix method %s", m.name if m else "?")
    return BitrixError(500, "INTERNAL_SERVER_ERROR",
                       "Internal server error; the change was not saved")


def invoke(ctx: CallContext, name: str, params: dict[str, Any]) -> Any:
    """Run one method in the caller's transaction: commit on success, roll back on error.
    Raises ``BitrixError`` only."""
    m = lookup(name)
    check_scope(ctx, m)
    for attempt in range(UNIT_RETRIES + 1):
        try:
            result = m.handler(ctx, params)
            ctx.session.commit()
            return result
        except Exception as exc:  # every failure becomes a Bitrix24 error answer
            ctx.session.rollback()
            if lock_failure(exc) == "retry" and attempt < UNIT_RETRIES:
                continue  # lost a race before anything was committed: run it again
            raise to_bitrix_error(exc, m) from exc
    raise AssertionError("unreachable")
