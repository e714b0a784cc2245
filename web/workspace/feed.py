"""The CRM activity feed page: events the user may see, with likes, comments and @mentions.

Visibility, likes and comments are ``crm_models.services.feed``'s; this module only draws
them. Like and comment forms work as plain forms (redirect back to the item) and, with htmx,
swap the one item in place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import redirect, render_template, request, url_for
from markupsafe import Markup, escape

from crm_models.activity import AuditEvent
from crm_models.entities import ENTITY_MODELS
from crm_models.errors import ValidationFailed
from crm_models.fields import field_map
from crm_models.org import User
from crm_models.services.feed import (
    CRM_ENTITIES,
    Reactions,
    comment_on_event,
    like_event,
    list_feed,
    reactions,
    unlike_event,
    visible_event,
)

from ..auth import _safe_next, require_actor
from ..database import get_db
from ..pages import lookups
from ..pages.format import card_url, field_label, plain_value, record_title
from ..pages.messages import translate_fields
from . import bp
from .labels import ENTITY_ONE, FEED_ACTIONS, user_name

PAGE = 30
#: Diff keys that are not fields worth listing under a feed item.
QUIET = {"activity", "activity_done", "comment"}


@dataclass
class Change:
    label: str
    old: str
    new: str


@dataclass
class FeedEntry:
    event: AuditEvent
    who: str
    action: str
    entity_label: str
    record: Any | None  # None when the record is gone
    title: str
    detail: str
    changes: list[Change]
    reactions: Reactions = field(default_factory=Reactions)
    likers: str = ""  # their names, for the like button's tooltip


def _title_of_gone(event: AuditEvent) -> str:
    for key in ("title", "last_name", "first_name"):
        pair = (event.changes or {}).get(key)
        if isinstance(pair, list) and len(pair) == 2 and (pair[1] or pair[0]):
            return str(pair[1] or pair[0])
    return f"#{event.entity_id}"


def entries(events: list[AuditEvent]) -> list[FeedEntry]:
    db, actor = get_db(), require_actor()
    users = lookups.users()
    extra = reactions(db, actor.user_id, [e.id for e in events])
    out = []
    for e in events:
        record = db.get(ENTITY_MODELS[e.entity_type], e.entity_id)
        fields = field_map(e.entity_type)
        changes = []
        if e.action in ("updated", "stage_changed"):
            for key, pair in (e.changes or {}).items():
                if key in QUIET or key not in fields:
                    continue
                old, new = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
                f = fields[key]
                changes.append(Change(field_label(e.entity_type, key),
                                      plain_value(e.entity_type, f, old, users),
                                      plain_value(e.entity_type, f, new, users)))
        detail = ""
        for key in ("activity", "activity_done", "comment"):
            pair = (e.changes or {}).get(key)
            if isinstance(pair, list) and pair:
                detail = str(pair[-1] or "")
        out.append(FeedEntry(
            e, user_name(users, e.actor_user_id, e.actor_label),
            str(FEED_ACTIONS.get(e.action, e.action)), str(ENTITY_ONE[e.entity_type]),
            record, record_title(record) if record is not None else _title_of_gone(e), detail,
            changes, extra[e.id], ", ".join(user_name(users, u) for u in extra[e.id].likers)))
    return out


def highlight(text: str, mention_ids: list[int], users: dict[int, User]) -> Markup:
    """The comment, escaped, line breaks kept, each mention of a user marked."""
    html = str(escape(text))
    for uid in mention_ids or []:
        user = users.get(uid)
        if user is None:
            continue
        for name in (user.full_name, user.email):
            pattern = re.compile("@" + re.escape(str(escape(name))), re.IGNORECASE)
            html = pattern.sub(lambda m: f'<mark class="mention">{m.group(0)}</mark>', html)
    return Markup(html.replace("\n", "<br>"))


def _filters() -> dict[str, str]:
    return {k: request.args.get(k, "").strip()[:20]
            for k in ("entity_type", "user_id", "department_id") if request.args.get(k)}


@bp.get("/feed")
def feed() -> Any:
    actor = require_actor()
    filters = _filters()
    before = request.args.get("before", "").strip()[:20]
    errors: dict[str, str] = {}
    try:
        events = list_feed(get_db(), actor, before=before or None, limit=PAGE + 1, **filters)
    except ValidationFailed as exc:
        events, errors = [], translate_fields(exc.fields)
    more = len(events) > PAGE
    events = events[:PAGE]
    older = (url_for("workspace.feed", before=events[-1].id, **filters)
             if more and events else None)
    return render_template(
        "workspace/feed.html", entries=entries(events), filters=filters, errors=errors,
        older=older, users=lookups.users(), active_users=lookups.active_users(),
        departments=lookups.departments(), entity_types=CRM_ENTITIES, entity_one=ENTITY_ONE,
        highlight=highlight, card_url=card_url), 422 if errors else 200


def _item(event_id: int, status: int = 200, errors: dict[str, str] | None = None,
          text: str = "") -> Any:
    """After a like or a comment: the item itself for htmx, else back to it in the feed."""
    if request.headers.get("HX-Request"):
        event = visible_event(get_db(), require_actor(), event_id)
        return render_template("workspace/_feed_item.html", entry=entries([event])[0],
                               users=lookups.users(), highlight=highlight, card_url=card_url,
                               errors=errors or {}, text=text), status
    if errors:
        raise ValidationFailed(errors)
    nxt = request.form.get("next")
    return redirect(_safe_next(nxt) if nxt else url_for("workspace.feed",
                                                        _anchor=f"event-{event_id}"))


@bp.post("/feed/<int:event_id>/<any(like, unlike):action>")
def feed_like(event_id: int, action: str) -> Any:
    db = get_db()
    (like_event if action == "like" else unlike_event)(db, require_actor(), event_id)
    db.commit()
    return _item(event_id)


@bp.post("/feed/<int:event_id>/comments")
def feed_comment(event_id: int) -> Any:
    db = get_db()
    text = request.form.get("text", "")
    try:
        comment_on_event(db, require_actor(), event_id, text)
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        return _item(event_id, 422, translate_fields(exc.fields), text)
    return _item(event_id)
