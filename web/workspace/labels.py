"""Words of the workspace pages in the user's language, and who-did-it names."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import select

from automation.actors import parse_process_label
from crm_models.org import User

NOTIFICATION_KINDS = {
    "task": _l("New task"), "overdue": _l("Overdue task"), "comment": _l("New comment"),
    "mention": _l("You were mentioned"), "process": _l("Message from a process"),
    "reassigned": _l("Handed to a colleague"),
}
#: What a feed item says someone did (audit actions of CRM records).
FEED_ACTIONS = {
    "created": _l("created"), "updated": _l("changed"), "stage_changed": _l("moved"),
    "commented": _l("commented on"), "activity_added": _l("planned an activity on"),
    "activity_done": _l("completed an activity on"), "converted": _l("converted"),
    "deleted": _l("deleted"), "product_rows_changed": _l("changed the products of"),
    "invoice_created": _l("made an invoice for"),
    "responsible_confirmed": _l("confirmed the responsible of"),
    "unlinked": _l("unlinked a deleted record from"),
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
#: The shipped processes' English names (processes/*.bpmn), shown in the user's language
#: while a deployment still carries them.
SHIPPED_PROCESS_NAMES = {
    "key_client_routing": ("Key client routing", _l("Key client routing")),
    "large_deal_routing": ("Large deal routing", _l("Large deal routing")),
    "stale_deal_followup": ("Follow up idle deals", _l("Follow up idle deals")),
}
#: Who acted when no person did (``system_actor(label)``).
SYSTEM_ACTORS = {"system": _l("system"), "demo data": _l("demo data"),
                 "cli": _l("command line"), "schedule": _l("schedule"),
                 "bench": _l("load test")}


def process_title(key: str, name: str | None) -> str:
    """A process's name for people: a shipped one in the user's language."""
    shipped = SHIPPED_PROCESS_NAMES.get(key)
    if shipped is not None and (not name or name == shipped[0]):
        return str(shipped[1])
    return name or key


def process_words(key: str, name: str | None, version: int | None = None) -> str:
    """"process «Large deal routing», version 2" in the user's language."""
    title = process_title(key, name)
    if version is None:
        return _("process “%(name)s”", name=title)
    return _("process “%(name)s”, version %(version)s", name=title, version=version)


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
        return process_words(parsed.key, _definition_name(parsed.key, parsed.version),
                             parsed.version)
    if label.startswith("process "):
        key = label.removeprefix("process ")
        return process_words(key, _definition_name(key, None))
    if label in SYSTEM_ACTORS:
        return str(SYSTEM_ACTORS[label])
    return label or _("system")


def _definition_name(key: str, version: int | None) -> str | None:
    """The deployed process's name (the newest version when none is given)."""
    from engine.store import ProcessDefinition

    from ..database import get_db

    query = select(ProcessDefinition.name).where(ProcessDefinition.key == key)
    if version is not None:
        query = query.where(ProcessDefinition.version == version)
    return get_db().scalars(query.order_by(ProcessDefinition.version.desc()).limit(1)).first()


def kind_label(kind: str) -> str:
    return str(NOTIFICATION_KINDS.get(kind, kind))


def names(users: dict[int, User], ids: Any) -> str:
    return ", ".join(user_name(users, i) for i in ids or [])
