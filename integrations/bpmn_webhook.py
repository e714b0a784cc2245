"""The BPMN service operation ``webhook.call``: POST a Bitrix24-style form to a URL from a
process, so a diagram can notify an external system the way Bitrix24's outgoing webhooks do.

The form carries ``event``, ``data[FIELDS][ID]`` and ``data[FIELDS][ENTITY_TYPE]`` of the
process's record, any extra ``fields`` as ``data[FIELDS][<NAME>]``, ``ts`` and (when given)
``auth[application_token]``. A network failure, a 5xx or a 429 is retried by the engine (and
becomes an incident when the retries are used up); other answers fail at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from automation.params import bad_params, coerce_params
from engine.errors import ServiceCallError
from engine.ports import OperationSpec, ParamSpec, ProcessContext

from .delivery import SendResult, guarded_sender
from .url_guard import UrlGuard, UrlRefused

SPEC = OperationSpec(
    name="webhook.call",
    title="Call a webhook",
    description="POST a Bitrix24-style event form (event, data[FIELDS][ID], ts, "
                "auth[application_token]) to a URL.",
    params=(
        ParamSpec("url", "string", description="http(s) URL of the receiving handler"),
        ParamSpec("event", "string", required=False,
                  description="the 'event' value sent (default ONBPMNWEBHOOK)"),
        ParamSpec("fields", "json", required=False,
                  description="extra values, sent as data[FIELDS][NAME]"),
        ParamSpec("token", "string", required=False,
                  description="sent as auth[application_token] for the receiver to check"),
    ),
)
DEFAULT_EVENT = "ONBPMNWEBHOOK"


class WebhookOperation:
    """The operation object registered in the engine's ``ServiceRegistry``."""

    spec = SPEC

    def __init__(self, *, guard: UrlGuard | None = None,
                 sender: Callable[[str, dict[str, str], float], SendResult] | None = None,
                 timeout: float = 10.0) -> None:
        self.guard = guard or UrlGuard()
        self.sender = sender  # default: http_post_form through ``guard``
        self.timeout = timeout

    def check_param(self, name: str, value: Any) -> str | None:
        """A literal parameter's problem at deploy time (the engine asks): a ``url`` that the
        guard refuses is a deploy error, not an incident later."""
        if name != "url" or not isinstance(value, str):
            return None
        try:
            self.guard.check_url(value)
        except UrlRefused as exc:
            return str(exc)
        return None

    def __call__(self, session: Session, ctx: ProcessContext, params: Mapping[str, Any],
                 data: Mapping[str, Any]) -> dict[str, Any]:
        values = coerce_params(SPEC, params)
        url = values["url"]
        try:
            self.guard.check_url(url)
        except UrlRefused as exc:
            raise bad_params(SPEC, {"url": str(exc)}) from None
        extra = values.get("fields") or {}
        if not isinstance(extra, dict) or any(isinstance(v, (dict, list))
                                              for v in extra.values()):
            raise bad_params(SPEC, {"fields": "must be an object of plain values"})
        form = {"event": values.get("event") or DEFAULT_EVENT, "ts": str(int(time.time()))}
        if ctx.entity_id is not None:
            form["data[FIELDS][ID]"] = str(ctx.entity_id)
            form["data[FIELDS][ENTITY_TYPE]"] = str(ctx.entity_type or "")
        for key, value in extra.items():
            form[f"data[FIELDS][{str(key).upper()}]"] = "" if value is None else str(value)
        if values.get("token"):
            form["auth[application_token]"] = values["token"]
        send = self.sender or guarded_sender(self.guard)
        result = send(url, form, self.timeout)
        if result.refused:
            raise bad_params(SPEC, {"url": result.error.removeprefix("refused: ")})
        if not result.ok:
            transient = result.status is None or result.status >= 500 or result.status == 429
            raise ServiceCallError(f"webhook.call: {url[:200]} answered "
                                   f"{result.error or result.status}", retryable=transient)
        return {"webhook": {"status": result.status}}


def register_webhook_operation(registry: Any, guard: UrlGuard | None = None) -> str:
    """Register ``webhook.call`` in the engine's registry (which refuses duplicates); its
    URLs go through ``guard`` (default: nothing allow-listed)."""
    registry.register(WebhookOperation(guard=guard))
    return SPEC.name
