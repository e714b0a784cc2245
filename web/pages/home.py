"""The start page: a manager's day.

What is overdue and what is due today (process tasks of the inbox and planned activities),
the user's open deals by stage with their sums, and the newest items of the feed. Everything
comes through the same reads as the inbox, the lists and the feed, so rights are the same.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app, render_template, url_for
from sqlalchemy import select

from crm_models.activity import Activity
from crm_models.entities import ENTITY_MODELS, StageSemantics
from crm_models.services.feed import list_feed
from crm_models.services.records import list_records

from ..auth import require_actor
from ..database import get_db
from . import bp
from .format import ACTIVITY_TYPE_LABELS, PLURAL, card_url, record_title

#: At most this many rows per block; the full lists are a link away.
ROWS = 10
FEED_ITEMS = 8


@dataclass
class DueItem:
    kind: str  # "task" or "activity"
    title: str
    url: str
    due_at: dt.datetime
    what: str  # the activity's type, or the task's record
    record_url: str | None = None
    record_title: str = ""


@dataclass
class StageRow:
    stage: Any
    count: int
    total: Decimal
    currency: str
    url: str


def _day_bounds(tz_name: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The start of the user's today and of their tomorrow, in UTC."""
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    local = now.astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


def _record(entity: str | None, entity_id: int | None, actor: Any) -> tuple[str | None, str]:
    """A link and a name for the record behind a task or activity, if the user may read it."""
    if entity not in PLURAL or entity_id is None:
        return None, ""
    obj = get_db().get(ENTITY_MODELS[entity], entity_id)
    if obj is None or not actor.allows_record(entity, "read", obj.responsible_id, obj.opened):
        return None, ""
    return card_url(entity, entity_id), record_title(obj)


def due_items(actor: Any, now: dt.datetime) -> list[DueItem]:
    """The user's open tasks and activities with a due time up to the end of today."""
    db = get_db()
    _start, end = _day_bounds(actor.timezone, now)
    out = []
    for t in current_app.extensions["engine"].inbox(db, actor.user_id):
        if t.due_at is not None and t.due_at < end:
            link, title = _record(t.entity_type, t.entity_id, actor)
            out.append(DueItem("task", t.name, url_for("workspace.task_page", task_id=t.id),
                               t.due_at, "", link, title))
    rows = db.scalars(select(Activity).where(
        Activity.responsible_id == actor.user_id, Activity.done.is_(False),
        Activity.due_at.is_not(None), Activity.due_at < end)
        .order_by(Activity.due_at).limit(ROWS * 5))
    for a in rows:
        link, title = _record(a.entity_type, a.entity_id, actor)
        out.append(DueItem("activity", a.subject, (link or url_for("pages.home")) + "#activities",
                           a.due_at, str(ACTIVITY_TYPE_LABELS.get(a.type, a.type)), link, title))
    return sorted(out, key=lambda i: i.due_at)


def deals_by_stage(actor: Any) -> list[StageRow]:
    """The user's open deals (stages still in progress) counted and summed per stage."""
    if not actor.level("deal", "read"):
        return []
    deals = list_records(get_db(), actor, "deal", filters={"responsible_id": actor.user_id},
                         per_page=500, with_total=False).items
    rows: dict[int, StageRow] = {}
    for d in deals:
        stage = d.stage
        if stage is None or stage.semantics != StageSemantics.PROCESS.value:
            continue  # won and lost deals are no longer work
        row = rows.get(stage.id)
        if row is None:
            row = rows[stage.id] = StageRow(stage, 0, Decimal(0), d.currency or "RUB", url_for(
                "pages.record_list", plural="deals", stage=stage.code,
                responsible_id=actor.user_id))
        row.count += 1
        if d.amount is not None and (d.currency or "RUB") == row.currency:
            row.total += Decimal(str(d.amount))
    return sorted(rows.values(), key=lambda r: (r.stage.pipeline_id, r.stage.sort))


@bp.get("/")
def home() -> str:
    actor = require_actor()
    now = dt.datetime.now(dt.UTC)
    items = due_items(actor, now) if actor.user_id is not None else []
    start, _end = _day_bounds(actor.timezone, now)
    overdue = [i for i in items if i.due_at < now]
    today = [i for i in items if i.due_at >= now]
    from ..workspace.feed import entries

    feed = entries(list_feed(get_db(), actor, limit=FEED_ITEMS))
    return render_template("home.html", overdue=overdue[:ROWS], today=today[:ROWS],
                           more_overdue=max(0, len(overdue) - ROWS),
                           more_today=max(0, len(today) - ROWS),
                           stages=deals_by_stage(actor), feed=feed)
