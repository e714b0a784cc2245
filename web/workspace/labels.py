"""Words of the workspace pages in the user's language, and who-did-it names."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

from automation.actors import parse_process_label
from crm_models.org import User

NOTIFICATION_KINDS = {
    "task": _l("New task"), "overdue": _l("Overdue task"), "comment": _l("New comment"),
    "mention": _l("You were mentioned"), "process": _l("Message from a process"),
}
#: What a feed item says someone did (audit actions of CRM records).
FEED_ACTIONS = {
    "created": _l("created"), "updated": _l("changed"), "stage_changed": _l("moved"),
    "commented": _l("commented on"), "activity_added": _l("planned an activity on"),
    "activity_done": _l("completed an activity on"), "converted": _l("converted"),
    "deleted": _l("deleted"), "product_rows_changed": _l("changed the products of"),
    "invoice_created": _l("made an invoice for"),
}
#: The record a feed item is about, as the object of its verb ("created a deal").
ENTITY_ONE = {"lead": lazy_pgettext("feed", "lead"), "deal": lazy_pgettext("feed", "deal"),
              "contact": lazy_pgettext("feed", "contact"),
              "company": lazy_pgettext("feed", "company")}
PERIODS = {"day": _l("By day"), "week": _l("By week"), "month": _l("By month")}
PROCESS_EVENTS = {
    "started": _l("started"), "finished": _l("finished"), "cancelled": _l("was cancelled"),
    "incident": _l("stopped on an error"), "timer_fired": _l("timer fired"),
    "claimed": _l("task claimed"), "delegated": _l("task delegated"),
    "task_cancelled": _l("task withdrawn"),
}
PRIORITIES = {1: _l("high"), 2: _l("normal"), 3: _l("low")}


def user_name(users: dict[int, User], user_id: int | None, fallback: str = "") -> str:
    """A user's name, or ``fallback`` (an actor label) when no user acted."""
    if user_id is not None and user_id in users:
        return users[user_id].full_name
    if user_id is not None:
        return f"#{user_id}"
    return actor_label(fallback)


def actor_label(label: str) -> str:
    """An audit label in words: "process <key> v<n>, instance <id>" reads as a process."""
    parsed = parse_process_label(label)
    if parsed is not None:
        return _("process %(key)s v%(version)s", key=parsed.key, version=parsed.version)
    if label.startswith("process "):
        return _("process %(key)s", key=label.removeprefix("process "))
    return label or _("system")


def kind_label(kind: str) -> str:
    return str(NOTIFICATION_KINDS.get(kind, kind))


def names(users: dict[int, User], ids: Any) -> str:
    return ", ".join(user_name(users, i) for i in ids or [])
