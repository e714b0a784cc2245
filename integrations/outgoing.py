"""Outgoing webhooks: handlers registered per Bitrix24 event, and the mapping from our outbox
event types to Bitrix24's event names and payloads."""
from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.activity import OutboxEvent
from crm_models.errors import NotFound, ValidationFailed
from crm_models.permissions import Actor
from crm_models.services.records import record_event

from .models import DeliveryCursor, EventHandler
from .url_guard import UrlGuard, UrlRefused

CURSOR = "bitrix_outgoing"

#: Our outbox event type → Bitrix24 event name, and where the id sent as ``data[FIELDS][ID]``
#: comes from (``entity`` = the event's record, else that key of the payload).
EVENT_MAP: dict[str, tuple[str, str]] = {
    **{f"{e}.{ours}": (f"ONCRM{e.upper()}{theirs}", "entity")
       for e in ("lead", "deal", "contact", "company", "product")
       for ours, theirs in (("created", "ADD"), ("updated", "UPDATE"), ("deleted", "DELETE"))},
    "activity.created": ("ONCRMACTIVITYADD", "activity_id"),
    "activity.updated": ("ONCRMACTIVITYUPDATE", "activity_id"),
    "comment.added": ("ONCRMTIMELINECOMMENTADD", "comment_id"),
}
EVENTS = tuple(sorted({name for name, _ in EVENT_MAP.values()}))


def bitrix_event(outbox: OutboxEvent) -> tuple[str, int] | None:
    """(Bitrix24 event name, id to report) for an outbox event, or None when it has none.

    ``deal.stage_changed`` and ``lead.converted`` map to nothing: the same change already
    produced an ``*.updated`` event, which is what Bitrix24 sends.
    """
    mapped = EVENT_MAP.get(outbox.event_type)
    if mapped is None:
        return None
    name, source = mapped
    if source == "entity":
        return name, outbox.entity_id
    value = (outbox.payload or {}).get(source)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return name, value


def payload(*, event: str, handler: EventHandler, entity_id: int, ts: int,
            domain: str) -> dict[str, str]:
    """The form fields Bitrix24 posts to a handler (PHP bracket names)."""
    return {
        "event": event,
        "event_handler_id": str(handler.id),
        "data[FIELDS][ID]": str(entity_id),
        "ts": str(ts),
        "auth[domain]": domain,
        "auth[client_endpoint]": f"https://{domain}/rest/",
        "auth[member_id]": "",
        "auth[application_token]": handler.application_token,
    }


def _check_url(url: Any, guard: UrlGuard) -> str:
    try:
        return guard.check_url(url)
    except UrlRefused as exc:
        raise ValidationFailed({"url": str(exc)}) from None


def ensure_cursor(session: Session) -> DeliveryCursor:
    """The worker's cursor; a new one starts after the newest outbox event (nothing that
    happened before the first handler existed is sent)."""
    cursor = session.get(DeliveryCursor, CURSOR)
    if cursor is None:
        newest = session.scalar(select(func.max(OutboxEvent.id))) or 0
        cursor = DeliveryCursor(name=CURSOR, last_outbox_id=newest)
        session.add(cursor)
        session.flush()
    return cursor


def register_handler(session: Session, actor: Actor, *, event: str, url: str,
                     guard: UrlGuard | None = None) -> EventHandler:
    """Send ``event`` notifications to ``url`` from now on. Administrators only. ``guard``
    (default: nothing allow-listed) refuses URLs aimed at this machine or private networks;
    the delivery worker checks them again, resolved, when it sends."""
    actor.require_flag("manage_settings")
    errors: dict[str, str] = {}
    if not isinstance(event, str) or event.strip().upper() not in EVENTS:
        errors["event"] = "must be one of: " + ", ".join(EVENTS)
    try:
        url = _check_url(url, guard or UrlGuard())
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
    ensure_cursor(session)
    handler = EventHandler(event=event.strip().upper(), url=url, created_by_id=actor.user_id,
                           application_token=secrets.token_hex(16))
    session.add(handler)
    session.flush()
    record_event(session, actor, entity="event_handler", entity_id=handler.id,
                 action="created", event_type=None,
                 changes={"event": [None, handler.event], "url": [None, url]})
    return handler


def set_handler_active(session: Session, actor: Actor, handler_id: int,
                       active: bool) -> EventHandler:
    """Pause or resume a handler; a paused one gets no new deliveries."""
    actor.require_flag("manage_settings")
    handler = session.get(EventHandler, handler_id) if isinstance(handler_id, int) else None
    if handler is None:
        raise NotFound(f"No event handler with id {str(handler_id)[:20]}")
    if handler.active != active:
        handler.active = active
        session.flush()
        record_event(session, actor, entity="event_handler", entity_id=handler.id,
                     action="updated", event_type=None, changes={"active": [not active, active]})
    return handler


def delete_handler(session: Session, actor: Actor, handler_id: int) -> None:
    """Remove a handler and its delivery log."""
    actor.require_flag("manage_settings")
    handler = session.get(EventHandler, handler_id) if isinstance(handler_id, int) else None
    if handler is None:
        raise NotFound(f"No event handler with id {str(handler_id)[:20]}")
    session.delete(handler)
    session.flush()
    record_event(session, actor, entity="event_handler", entity_id=handler_id,
                 action="deleted", event_type=None, changes={})


def list_handlers(session: Session, actor: Actor) -> list[EventHandler]:
    actor.require_flag("manage_settings")
    return list(session.scalars(select(EventHandler).order_by(EventHandler.id)))
