"""The managers' workspace: task inbox, notifications, activity feed, activity index, profile.

Pages of the ``workspace`` blueprint (every view needs a signed-in user):

- ``/inbox`` — my tasks and my roles' tasks to claim, each with its record, instructions and
  form; claim, release, delegate, complete (``inbox``);
- ``/notifications`` — the bell's list; ``/notifications/bell`` is the fragment the top bar
  polls every 10 seconds (``notifications``);
- ``/feed`` — CRM events the user may see, with likes, comments and @mentions (``feed``);
- ``/activity-index`` — actions per employee and department per day/week/month (``index``);
- ``/profile`` — out of office with a deputy (``profile``).

Record cards include ``workspace/_timeline.html``, which calls the ``record_timeline`` template
global (``timeline``). The logic lives Flask-free in ``automation.notifications``,
``automation.timeline``, ``crm_models.services.feed`` and ``crm_models.services.activity_index``.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, g, redirect, request, url_for

bp = Blueprint("workspace", __name__)


@bp.before_request
def _require_login() -> Any:
    if g.get("user") is None:
        return redirect(url_for("login", next=request.full_path.rstrip("?")))
    return None


def init_app(app: Flask) -> None:
    from automation.notifications import install_notifier

    from . import feed, inbox, index, notifications, profile, timeline  # noqa: F401 (routes)

    install_notifier(app.extensions["db_sessionmaker"])
    app.jinja_env.globals.update(record_timeline=timeline.entries,
                                 unread_notifications=notifications.unread_for_current_user,
                                 has_chart_bundle=index.has_chart_bundle)
    app.register_blueprint(bp)
