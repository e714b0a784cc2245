"""Activities (calls, meetings, e-mails, to-dos) and comments bound to CRM records."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..activity import Activity, ActivityType, Comment
from ..errors import NotFound, ValidationFailed
from ..org import User
from ..permissions import Actor
from . import records

ACTIVITY_TYPES = tuple(t.value for t in ActivityType)


def _parse_due(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationFailed({"due_at": "must be an ISO 8601 date-time"}) from None
    else:
        raise ValidationFailed({"due_at": "must be an ISO 8601 date-time"})
    if parsed.tzinfo is None:
        raise ValidationFailed({"due_at": "must include a time zone offset"})
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC equivalent
        raise ValidationFailed({"due_at": "is out of range"}) from None


def add_activity(session: Session, actor: Actor, *, entity_type: str, entity_id: int,
                 type: str, subject: str, description: str = "", due_at: Any = None,
                 responsible_id: int | None = None) -> Activity:
    """Plan an activity on a record the actor may update; emits ``activity.created``."""
    errors: dict[str, str] = {}
    if type not in ACTIVITY_TYPES:
        errors["type"] = "must be one of: " + ", ".join(ACTIVITY_TYPES)
    if not isinstance(subject, str) or not subject.strip():
        errors["subject"] = "is required"
    elif len(subject) > 255:
        errors["subject"] = "must be at most 255 characters"
    if not isinstance(description, str) or len(description) > 20000:
        errors["description"] = "must be text of at most 20000 characters"
    if errors:
        raise ValidationFailed(errors)
    record = records.load(session, actor, entity_type, entity_id, "update")
    responsible_id = responsible_id or actor.user_id or record.responsible_id
    user = session.get(User, responsible_id) if _is_id(responsible_id) else None
    if user is None or not user.active:
        raise ValidationFailed(
            {"responsible_id": f"no active user with id {str(responsible_id)[:20]}"})
    act = Activity(type=type, subject=subject.strip(), description=description,
                   due_at=_parse_due(due_at), responsible_id=user.id, entity_type=entity_type,
                   entity_id=entity_id, created_by_id=actor.user_id)
    session.add(act)
    session.flush()
    payload = {"activity_id": act.id, "type": type, "subject": act.subject,
               "responsible_id": user.id,
               "due_at": act.due_at.isoformat() if act.due_at else None}
    records.record_event(session, actor, entity=entity_type, entity_id=entity_id,
                         action="activity_added", event_type="activity.created",
                         changes={"activity": [None, act.subject]}, payload=payload,
                         responsible_id=record.responsible_id)
    return act


def _is_id(value: Any) -> bool:
    # A string or a huge number compared with an id column fails on PostgreSQL.
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= records.MAX_ID


def complete_activity(session: Session, actor: Actor, activity_id: int) -> Activity:
    """Mark an activity done: its responsible user may if they can read the record, anyone
    else needs update on the record. Emits ``activity.updated`` (nothing when already done)."""
    act = session.get(Activity, activity_id) if _is_id(activity_id) else None
    if act is None:
        raise NotFound(f"No activity with id {activity_id}")
    record = records.load(session, actor, act.entity_type, act.entity_id)
    if act.responsible_id != actor.user_id:
        actor.require(act.entity_type, "update", record)
    if act.done:
        return act
    act.done = True
    session.flush()
    records.record_event(session, actor, entity=act.entity_type, entity_id=act.entity_id,
                         action="activity_done", event_type="activity.updated",
                         changes={"activity_done": [None, act.subject]},
                         payload={"activity_id": act.id, "done": True},
                         responsible_id=record.responsible_id)
    return act


def list_activities(session: Session, actor: Actor, entity_type: str,
                    entity_id: int) -> list[Activity]:
    records.load(session, actor, entity_type, entity_id)
    return list(session.scalars(select(Activity).where(
        Activity.entity_type == entity_type, Activity.entity_id == entity_id)
        .order_by(Activity.id)))


def add_comment(session: Session, actor: Actor, *, entity_type: str, entity_id: int,
                text: str) -> Comment:
    """A timeline comment on a record the actor may read; emits ``comment.added``."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed({"text": "is required"})
    if len(text) > 20000:
        raise ValidationFailed({"text": "must be at most 20000 characters"})
    record = records.load(session, actor, entity_type, entity_id)
    comment = Comment(entity_type=entity_type, entity_id=entity_id, author_id=actor.user_id,
                      author_label=actor.label, text=text.strip())
    session.add(comment)
    session.flush()
    records.record_event(session, actor, entity=entity_type, entity_id=entity_id,
                         action="commented", event_type="comment.added",
                         changes={"comment": [None, comment.text[:200]]},
                         payload={"comment_id": comment.id, "text": comment.text},
                         responsible_id=record.responsible_id)
    return comment


def list_comments(session: Session, actor: Actor, entity_type: str,
                  entity_id: int) -> list[Comment]:
    records.load(session, actor, entity_type, entity_id)
    return list(session.scalars(select(Comment).where(
        Comment.entity_type == entity_type, Comment.entity_id == entity_id)
        .order_by(Comment.id)))
