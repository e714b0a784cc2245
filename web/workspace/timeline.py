"""A record card's one timeline, drawn from ``automation.timeline.record_timeline``.

``entries(entity, record)`` is a template global: ``workspace/_timeline.html`` (included by
``records/card.html``) calls it after the card view has checked read access.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from automation.timeline import ProcessRef, TimelineItem, record_timeline
from crm_models.fields import field_map

from ..database import get_db
from ..pages import lookups
from ..pages.format import ACTIVITY_TYPE_LABELS, AUDIT_ACTION_LABELS, field_label, plain_value
from .labels import PROCESS_EVENTS, names, process_words, user_name

QUIET_KEYS = {"activity", "activity_done", "comment"}


@dataclass
class Entry:
    at: dt.datetime
    kind: str
    who: str
    text: str
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # label, old, new
    created: bool = False
    body: str = ""  # a comment's text, an activity's description


def process_name(ref: ProcessRef | None) -> str:
    if ref is None:
        return _("a process")
    return process_words(ref.key, ref.name, ref.version)


def _change(entity: str, item: TimelineItem, users: dict[int, Any]) -> Entry:
    ev = item.row
    fields = field_map(entity)
    changes = []
    for key, pair in (ev.changes or {}).items():
        if key in QUIET_KEYS or key not in fields:
            continue
        old, new = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
        f = fields[key]
        changes.append((field_label(entity, key), plain_value(entity, f, old, users),
                        plain_value(entity, f, new, users)))
    who = (process_name(item.process) if item.process is not None
           else user_name(users, item.user_id, item.label))
    text = str(AUDIT_ACTION_LABELS.get(ev.action, ev.action))
    done = (ev.changes or {}).get("activity_done")
    if isinstance(done, list) and done:
        text = f"{text}: {done[-1]}"
    return Entry(item.at, "change", who, text, changes, created=ev.action == "created")


def _task(item: TimelineItem, users: dict[int, Any]) -> Entry:
    t = item.row
    if item.data["assignee_id"] is not None:
        to = user_name(users, item.data["assignee_id"])
    else:
        to = names(users, item.data["candidate_ids"]) or "—"
    text = _("Task “%(task)s” routed to %(user)s by %(process)s", task=t.name, user=to,
             process=process_name(item.process))
    return Entry(item.at, "task", "", text)  # the text names the process


def _task_done(item: TimelineItem, users: dict[int, Any]) -> Entry:
    t = item.row
    labels = {f.get("name"): (f.get("label") or f.get("name"),
                              {o.get("value"): o.get("label") for o in f.get("options", [])})
              for f in t.form or []}
    changes = []
    for key, value in item.data["result"].items():
        label, options = labels.get(key, (key, {}))
        shown = options.get(value, value)
        if isinstance(shown, bool):
            shown = _("Yes") if shown else _("No")
        changes.append((str(label), "", str(shown) if shown not in (None, "") else "—"))
    return Entry(item.at, "task_done", user_name(users, item.user_id),
                 _("completed the task “%(task)s”", task=t.name), changes, created=True)


def _process(item: TimelineItem, users: dict[int, Any]) -> Entry:
    h = item.row
    event = item.data["event"]
    text = str(PROCESS_EVENTS.get(event, event))
    if h.user_id is not None:  # who started it by their change, claimed or delegated
        text += f" ({user_name(users, h.user_id)})"
    body = h.message if event == "incident" else ""
    return Entry(item.at, "process", process_name(item.process), text, body=body)


def entries(entity: str, record: Any) -> list[Entry]:
    users = lookups.users()
    out = []
    for item in record_timeline(get_db(), entity, record.id):
        if item.kind == "change":
            out.append(_change(entity, item, users))
        elif item.kind == "comment":
            c = item.row
            out.append(Entry(item.at, "comment", user_name(users, c.author_id, c.author_label),
                             _("commented"), body=c.text))
        elif item.kind == "activity":
            a = item.row
            kind = ACTIVITY_TYPE_LABELS.get(a.type, a.type)
            text = _("planned: %(kind)s “%(subject)s” for %(user)s", kind=kind,
                     subject=a.subject, user=user_name(users, a.responsible_id))
            if a.done:
                text += " · " + _("done")
            out.append(Entry(item.at, "activity", user_name(users, a.created_by_id, ""), text,
                             body=a.description))
        elif item.kind == "task":
            out.append(_task(item, users))
        elif item.kind == "task_done":
            out.append(_task_done(item, users))
        else:
            out.append(_process(item, users))
    return out

