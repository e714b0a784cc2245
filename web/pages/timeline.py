"""What a card needs besides the record: its comments and activities (the history of changes,
comments, tasks and process steps is one timeline: ``web/workspace/timeline.py``)."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from crm_models.permissions import Actor
from crm_models.services import list_activities

from ..database import get_db


def context(actor: Actor, entity: str, record: Any) -> dict[str, Any]:
    db = get_db()
    return {
        "activities": list_activities(db, actor, entity, record.id),
    }


def due_at_from_form(raw: str, timezone: str) -> str:
    """A ``datetime-local`` value typed in the user's time zone as ISO 8601 with its offset.

    Anything unparsable is passed on as typed, so the service names the field at fault.
    """
    raw = raw.strip()
    if not raw:
        return ""
    try:
        local = dt.datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if local.tzinfo is None:
        local = local.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return local.isoformat()
