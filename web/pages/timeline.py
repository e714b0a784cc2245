"""A record's timeline: comments, activities and the audit history with field diffs."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from crm_models.activity import AuditEvent
from crm_models.fields import field_map
from crm_models.permissions import Actor
from crm_models.services import list_activities, list_comments

from ..database import get_db
from . import lookups
from .format import AUDIT_ACTION_LABELS, field_label, plain_value

HISTORY_LIMIT = 200
#: Diffs of these are shown by the action label alone (their values are in the timeline).
QUIET_KEYS = {"activity", "activity_done", "comment"}


@dataclass
class Change:
    label: str
    old: str
    new: str


@dataclass
class HistoryEntry:
    at: dt.datetime
    who: str
    action: str
    changes: list[Change]
    created: bool = False  # a creation lists the initial values only


def history(entity: str, record_id: int) -> list[HistoryEntry]:
    """The record's audit events, newest first. The caller has checked read access."""
    users = lookups.users()
    fields = field_map(entity)
    rows = get_db().scalars(
        select(AuditEvent).where(AuditEvent.entity_type == entity,
                                 AuditEvent.entity_id == record_id)
        .order_by(AuditEvent.id.desc()).limit(HISTORY_LIMIT))
    out = []
    for ev in rows:
        changes = []
        for key, pair in (ev.changes or {}).items():
            if key in QUIET_KEYS or key not in fields:
                continue  # ids, timestamps and derived values are shown elsewhere
            old, new = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
            f = fields.get(key)
            changes.append(Change(field_label(entity, key), plain_value(entity, f, old, users),
                                  plain_value(entity, f, new, users)))
        who = users[ev.actor_user_id].full_name if ev.actor_user_id in users else ev.actor_label
        detail = ""
        for key in ("activity", "activity_done", "comment", "invoice"):
            if key in (ev.changes or {}):
                detail = str((ev.changes[key] or [None, ""])[-1] or "")
        label = str(AUDIT_ACTION_LABELS.get(ev.action, ev.action))
        out.append(HistoryEntry(ev.at, who, f"{label}: {detail}" if detail else label, changes,
                                created=ev.action == "created"))
    return out


def context(actor: Actor, entity: str, record: Any) -> dict[str, Any]:
    db = get_db()
    return {
        "comments": list_comments(db, actor, entity, record.id),
        "activities": list_activities(db, actor, entity, record.id),
        "history": history(entity, record.id),
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
