"""The bell: unread count in the top bar (polled by htmx every 10 s), the list, marking read.

Each poll first adds the user's ``overdue`` notifications (``automation.notifications``), so an
overdue task rings the bell without any page being reloaded or any worker running.
"""
from __future__ import annotations

from typing import Any

from flask import current_app, g, redirect, render_template, request, url_for
from sqlalchemy.exc import OperationalError

from automation.models import Notification
from automation.notifications import (
    mark_read,
    notification_for,
    notify_overdue,
    recent,
    unread_count,
)
from crm_models.errors import NotFound
from strictnum import id_or_none

from ..auth import require_actor
from ..database import get_db
from ..pages import lookups
from ..pages.format import PLURAL
from . import bp
from .labels import actor_label, kind_label


def unread_for_current_user() -> int:
    """For the top bar of every page (0 when nobody is signed in)."""
    if g.get("user") is None:
        return 0
    if "unread_notifications" not in g:
        g.unread_notifications = unread_count(get_db(), g.user.id)
    return int(g.unread_notifications)


def _sweep_overdue() -> None:
    db, uid = get_db(), require_actor().user_id
    if uid is None:
        return
    engine = current_app.extensions["engine"]
    try:
        if notify_overdue(db, engine.inbox(db, uid), uid, engine.clock.now()):
            db.commit()
    except OperationalError:
        # Best effort: on SQLite a concurrent writer can make this read-then-write transaction
        # fail ("database is locked"); the poll must not fail with it, the next one retries.
        db.rollback()


def target_url(n: Notification) -> str:
    """Where a notification leads: its task, its feed item, or its record."""
    if n.task_id is not None:
        return url_for("workspace.task_page", task_id=n.task_id)
    if n.kind == "reassigned" and n.entity_type in PLURAL and n.entity_id is not None:
        return url_for("pages.record_handed", plural=PLURAL[n.entity_type],
                       record_id=n.entity_id)
    if n.event_id is not None:
        return url_for("workspace.feed", _anchor=f"event-{n.event_id}")
    if n.entity_type in PLURAL and n.entity_id is not None:
        return url_for("pages.record_card", plural=PLURAL[n.entity_type], record_id=n.entity_id)
    return url_for("workspace.notifications")


@bp.get("/notifications/bell")
def bell() -> Any:
    _sweep_overdue()
    return render_template("workspace/_bell.html")


@bp.get("/notifications")
def notifications() -> Any:
    _sweep_overdue()
    uid = require_actor().user_id or 0
    rows = recent(get_db(), uid, limit=100)
    return render_template("workspace/notifications.html", rows=rows, target_url=target_url,
                           kind_label=kind_label, actor_label=actor_label,
                           users=lookups.users())


@bp.get("/notifications/<int:notification_id>")
def open_notification(notification_id: int) -> Any:
    """Mark one notification read and go where it points."""
    db, uid = get_db(), require_actor().user_id or 0
    row = notification_for(db, uid, notification_id)
    if row is None:
        raise NotFound(f"No notification with id {notification_id}")
    target = target_url(row)
    mark_read(db, uid, [row.id], current_app.extensions["engine"].clock.now())
    db.commit()
    return redirect(target)


@bp.post("/notifications/read")
def read_all() -> Any:
    """Mark all (or the posted ``id`` values) read; htmx gets the bell back."""
    db, uid = get_db(), require_actor().user_id or 0
    ids = request.form.getlist("id")
    wanted = None if not ids else [i for i in map(id_or_none, ids) if i is not None]
    mark_read(db, uid, wanted, current_app.extensions["engine"].clock.now())
    db.commit()
    g.pop("unread_notifications", None)
    if request.headers.get("HX-Request"):
        return render_template("workspace/_bell.html")
    return redirect(url_for("workspace.notifications"))
