"""The CRM activity feed: which events a user may see, and likes and comments on them.

A feed item is an ``AuditEvent`` on a lead, deal, contact or company. A user sees an item when
they may read its record: for a record that still exists, ``Actor.scope`` of its entity decides
(responsible, department, open flag, as everywhere); for a deleted record, the
``AuditEvent.responsible_id`` written with the event stands in for the record's responsible
(its open flag is gone with it, so "all open" counts as "own + department + sub-departments").

Likes and comments are CRM writes like any other: the actor must see the item; each writes an
audit event and an outbox event (``feed.liked``, ``feed.unliked``, ``feed.commented``) on the
pseudo-entity ``feed`` with the item's id, in the caller's transaction. Those events are not
feed items themselves (the feed lists CRM entities only).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, and_, exists, false, func, or_, select, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from strictnum import NumberError, parse_id

from ..activity import AuditEvent
from ..entities import ENTITY_MODELS
from ..errors import NotFound, PermissionDenied, ValidationFailed
from ..feed import FeedComment, FeedLike, find_mentions, mention_candidates
from ..org import Department, PermLevel, User
from ..permissions import Actor, actor_for, department_tree, descendants
from .records import MAX_ID, record_event

CRM_ENTITIES = ("lead", "deal", "contact", "company")
#: Audit actions that are consequences, not something a person did: never feed items.
HIDDEN_ACTIONS = ("unlinked",)
MAX_COMMENT = 5000
MAX_FEED_PAGE = 100


def _users_for_level(actor: Actor, level: PermLevel) -> set[int]:
    users = {actor.user_id} if actor.user_id is not None else set()
    if level >= PermLevel.DEPARTMENT:
        users |= actor.department_user_ids
    if level >= PermLevel.SUBDEPARTMENTS:
        users |= actor.subtree_user_ids
    return users


def event_scope(actor: Actor, kind: ColumnElement[str] | None = None) -> ColumnElement[bool]:
    """A WHERE clause on ``AuditEvent`` selecting the feed items ``actor`` may see. ``kind``
    stands in for ``AuditEvent.entity_type`` (see ``_unindexed``)."""
    kind = AuditEvent.entity_type if kind is None else kind
    parts = []
    for entity in CRM_ENTITIES:
        level = actor.level(entity, "read")
        if level == PermLevel.NONE:
            continue
        is_entity = kind == entity
        if level == PermLevel.ALL:
            parts.append(is_entity)
            continue
        model = ENTITY_MODELS[entity]
        if level >= PermLevel.OPEN:  # most records may be readable: one probe per item
            live = exists(select(model.id).where(model.id == AuditEvent.entity_id,
                                                 actor.scope(model, "read")))
        else:
            # The records of a few people: their ids once (an index range), then a lookup
            # in that set per item, instead of reading the record of every item scanned.
            live = AuditEvent.entity_id.in_(select(model.id).where(actor.scope(model, "read")))
        gone = ~exists(select(model.id).where(model.id == AuditEvent.entity_id))
        users = sorted(_users_for_level(actor, level))
        by_responsible = AuditEvent.responsible_id.in_(users) if users else false()
        parts.append(and_(is_entity, or_(live, and_(by_responsible, gone))))
    return or_(*parts) if parts else false()


def _unindexed(session: Session) -> ColumnElement[str]:
    """``AuditEvent.entity_type`` as the newest-first feed compares it. Nearly every event is
    on a CRM entity, so the best plan walks the primary key backwards and stops after a page;
    SQLite's planner instead takes ``entity_type IN (…)`` to ``ix_audit_entity`` and sorts
    every event (195 ms at 200,000 events). ``entity_type || ''`` is the same value with no
    index on it. PostgreSQL plans the LIMIT itself and keeps the plain column (and its
    statistics)."""
    if session.get_bind().dialect.name == "sqlite":
        return type_coerce(AuditEvent.entity_type.concat(""), String)
    return AuditEvent.entity_type


def _check_id(value: Any, name: str) -> int:
    try:
        return parse_id(value)
    except NumberError:
        raise ValidationFailed({name: "must be a record id"}) from None


def visible_event(session: Session, actor: Actor, event_id: Any) -> AuditEvent:
    """The feed item, if ``actor`` may see it; NotFound otherwise (as for records)."""
    if isinstance(event_id, bool) or not isinstance(event_id, int) or not 0 < event_id <= MAX_ID:
        raise NotFound(f"No feed item with id {str(event_id)[:40]!r}")
    event = session.scalars(select(AuditEvent).where(
        AuditEvent.id == event_id, AuditEvent.entity_type.in_(CRM_ENTITIES),
        AuditEvent.action.not_in(HIDDEN_ACTIONS), event_scope(actor))).first()
    if event is None:
        raise NotFound(f"No feed item with id {event_id}")
    return event


def list_feed(session: Session, actor: Actor, *, entity_type: str | None = None,
              user_id: Any = None, department_id: Any = None, before: Any = None,
              limit: int = 30) -> list[AuditEvent]:
    """The newest feed items ``actor`` may see, newest first, optionally only those on
    ``entity_type``, by ``user_id``, or by the members of ``department_id`` and its
    sub-departments; ``before`` (an item id) pages back. Bad filters name their field."""
    kind = _unindexed(session)
    conds = [kind.in_(CRM_ENTITIES), AuditEvent.action.not_in(HIDDEN_ACTIONS),
             event_scope(actor, kind)]
    if entity_type not in (None, ""):
        if entity_type not in CRM_ENTITIES:
            raise ValidationFailed({"entity_type": "must be one of: " + ", ".join(CRM_ENTITIES)})
        conds.append(kind == entity_type)
    if user_id not in (None, ""):
        conds.append(AuditEvent.actor_user_id == _check_id(user_id, "user_id"))
    if department_id not in (None, ""):
        dep = session.get(Department, _check_id(department_id, "department_id"))
        if dep is None:
            raise ValidationFailed({"department_id": f"no department with id {department_id}"})
        deps = descendants(department_tree(session), [dep.id])
        members = select(User.id).where(User.department_id.in_(sorted(deps)))
        conds.append(AuditEvent.actor_user_id.in_(members))
    if before not in (None, ""):
        conds.append(AuditEvent.id < _check_id(before, "before"))
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_FEED_PAGE:
        raise ValidationFailed({"limit": f"must be between 1 and {MAX_FEED_PAGE}"})
    return list(session.scalars(select(AuditEvent).where(*conds)
                                .order_by(AuditEvent.id.desc()).limit(limit)))


@dataclass
class Reactions:
    """What the feed shows under one item."""

    likes: int = 0
    liked: bool = False  # by the user asking
    likers: list[int] = field(default_factory=list)
    comments: list[FeedComment] = field(default_factory=list)


def reactions(session: Session, user_id: int | None,
              event_ids: Sequence[int]) -> dict[int, Reactions]:
    """Likes and comments (oldest first) of the given items. The caller has checked that the
    user sees these items."""
    out = {eid: Reactions() for eid in event_ids}
    if not event_ids:
        return out
    for eid, uid in session.execute(select(FeedLike.event_id, FeedLike.user_id).where(
            FeedLike.event_id.in_(list(event_ids))).order_by(FeedLike.id)):
        r = out[eid]
        r.likes += 1
        r.likers.append(uid)
        r.liked = r.liked or uid == user_id
    for c in session.scalars(select(FeedComment).where(
            FeedComment.event_id.in_(list(event_ids))).order_by(FeedComment.id)):
        out[c.event_id].comments.append(c)
    return out


def _require_person(actor: Actor) -> int:
    if actor.user_id is None:
        raise PermissionDenied("Only a signed-in user can like or comment in the feed")
    return actor.user_id


def _feed_event(session: Session, actor: Actor, event: AuditEvent, action: str,
                payload: dict[str, Any], changes: dict[str, Any] | None = None) -> None:
    record_event(session, actor, entity="feed", entity_id=event.id, action=action,
                 event_type=f"feed.{action}", changes=changes or {},
                 payload={"event_id": event.id, "entity_type": event.entity_type,
                          "entity_id": event.entity_id, **payload},
                 responsible_id=event.responsible_id)


def like_event(session: Session, actor: Actor, event_id: Any) -> Reactions:
    """Like a feed item the actor sees (a second like changes nothing); emits ``feed.liked``."""
    uid = _require_person(actor)
    event = visible_event(session, actor, event_id)
    already = session.scalar(select(FeedLike.id).where(FeedLike.event_id == event.id,
                                                       FeedLike.user_id == uid))
    if already is None:
        try:
            with session.begin_nested():  # a concurrent double click must not fail the request
                session.add(FeedLike(event_id=event.id, user_id=uid))
                session.flush()
        except IntegrityError:
            pass
        else:
            _feed_event(session, actor, event, "liked", {"user_id": uid})
    return reactions(session, uid, [event.id])[event.id]


def unlike_event(session: Session, actor: Actor, event_id: Any) -> Reactions:
    """Take a like back (nothing to take back changes nothing); emits ``feed.unliked``."""
    uid = _require_person(actor)
    event = visible_event(session, actor, event_id)
    like = session.scalars(select(FeedLike).where(FeedLike.event_id == event.id,
                                                  FeedLike.user_id == uid)).first()
    if like is not None:
        session.delete(like)
        session.flush()
        _feed_event(session, actor, event, "unliked", {"user_id": uid})
    return reactions(session, uid, [event.id])[event.id]


def comment_on_event(session: Session, actor: Actor, event_id: Any, text: Any) -> FeedComment:
    """Comment under a feed item the actor sees; emits ``feed.commented``. ``@Full Name`` and
    ``@e-mail`` mention users; only those who may see the item are recorded as mentioned
    (and so notified)."""
    uid = _require_person(actor)
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed({"text": "is required"})
    if len(text) > MAX_COMMENT:
        raise ValidationFailed({"text": f"must be at most {MAX_COMMENT} characters"})
    event = visible_event(session, actor, event_id)
    text = text.strip()
    mentioned = [u for u in mentioned_users(session, text) if u.id != uid
                 and _sees_event(session, u, event.id)]
    comment = FeedComment(event_id=event.id, author_id=uid, author_label=actor.label, text=text,
                          mentions=[u.id for u in mentioned])
    session.add(comment)
    session.flush()
    _feed_event(session, actor, event, "commented",
                {"comment_id": comment.id, "text": text, "mentions": comment.mentions},
                changes={"comment": [None, text[:200]]})
    return comment


def mentioned_users(session: Session, text: str) -> list[User]:
    """The active users ``text`` mentions (``@Full Name`` or ``@e-mail``)."""
    if "@" not in (text or ""):
        return []
    people = list(session.scalars(select(User).where(User.active.is_(True))))
    ids = set(find_mentions(text, mention_candidates(people)))
    return [u for u in people if u.id in ids]


def _sees_event(session: Session, user: User, event_id: int) -> bool:
    who = actor_for(session, user)
    return session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.id == event_id, event_scope(who))) == 1


def readers_among(session: Session, users: Iterable[User], entity_type: str,
                  entity_id: int) -> list[User]:
    """Those of ``users`` who may read the record (a mention must not reveal a record to
    someone who cannot open it)."""
    model = ENTITY_MODELS.get(entity_type)
    record = session.get(model, entity_id) if model is not None else None
    if record is None:
        return []
    return [u for u in users
            if actor_for(session, u).allows_record(entity_type, "read", record.responsible_id,
                                                   record.opened)]
