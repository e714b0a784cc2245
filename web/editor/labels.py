"""The engine's words on the process pages in the user's language: instance and task statuses,
history event names, the history lines themselves and the record an instance belongs to.

The engine (no Flask) writes its history in English with user ids (``v1 started by user 4 on
'deal.created'``); the pages show the same facts in the user's language with the users' names.
A line no pattern knows is shown as the engine wrote it (``HISTORY_PATTERNS`` is checked
against every message the engine writes in tests/web/test_process_pages_russian.py).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext, ngettext

INSTANCE_STATUS = {
    "running": lazy_pgettext("process", "running"), "waiting": lazy_pgettext("process", "waiting"),
    "completed": lazy_pgettext("process", "completed"),
    "cancelled": lazy_pgettext("process", "cancelled"),
    "incident": lazy_pgettext("process", "incident"),
}
TASK_STATUS = {
    "open": lazy_pgettext("task", "open"), "claimed": lazy_pgettext("task", "claimed"),
    "completed": lazy_pgettext("task", "completed"), "cancelled": lazy_pgettext("task", "cancelled"),
}
HISTORY_EVENTS = {
    "started": lazy_pgettext("history", "started"),
    "left": lazy_pgettext("history", "step done"),
    "waiting": lazy_pgettext("history", "waiting"),
    "finished": lazy_pgettext("history", "finished"),
    "assigned": lazy_pgettext("history", "task assigned"),
    "claimed": lazy_pgettext("history", "task claimed"),
    "unclaimed": lazy_pgettext("history", "task released"),
    "delegated": lazy_pgettext("history", "task delegated"),
    "completed": lazy_pgettext("history", "task completed"),
    "task_cancelled": lazy_pgettext("history", "task withdrawn"),
    "message": lazy_pgettext("history", "message received"),
    "message_sent": lazy_pgettext("history", "message sent"),
    "message_dropped": lazy_pgettext("history", "message not passed on"),
    "timer_fired": lazy_pgettext("history", "timer fired"),
    "incident": lazy_pgettext("history", "incident"),
    "retry_scheduled": lazy_pgettext("history", "retry scheduled"),
    "error_caught": lazy_pgettext("history", "error caught"),
    "retried": lazy_pgettext("history", "retried"),
    "cancelled": lazy_pgettext("history", "cancelled"),
    "migrated": lazy_pgettext("history", "moved to another version"),
}
RECORDS = {"deal": _l("Deal"), "lead": _l("Lead"), "contact": _l("Contact"),
           "company": _l("Company"), "invoice": _l("Invoice"), "product": _l("Product"),
           "activity": _l("Activity")}
EVENT_ACTIONS = {
    "created": lazy_pgettext("crm event", "created"),
    "updated": lazy_pgettext("crm event", "changed"),
    "deleted": lazy_pgettext("crm event", "deleted"),
    "stage_changed": lazy_pgettext("crm event", "stage changed"),
    "converted": lazy_pgettext("crm event", "converted"),
    "responsible_changed": lazy_pgettext("crm event", "responsible changed"),
}
ASSIGNMENT_KINDS = {
    "user": lazy_pgettext("assignment", "a user"),
    "role": lazy_pgettext("assignment", "a role"),
    "responsible": lazy_pgettext("assignment", "the record's responsible"),
    "department_head": lazy_pgettext("assignment", "the department head"),
    "responsible_department_head": lazy_pgettext("assignment", "the head of the responsible's department"),
    "round_robin": lazy_pgettext("assignment", "in turn"),
    "least_loaded": lazy_pgettext("assignment", "the least loaded"),
}


def status(value: str) -> str:
    return str(INSTANCE_STATUS.get(value, value))


def task_status(value: str) -> str:
    return str(TASK_STATUS.get(value, value))


def event_name(value: str) -> str:
    return str(HISTORY_EVENTS.get(value, value))


def record(entity_type: str | None, entity_id: Any) -> str:
    if not entity_type:
        return ""
    return f"{RECORDS.get(entity_type, entity_type)} {entity_id}"


def crm_event(name: str) -> str:
    """``deal.created`` → «Сделка: создана»; an unknown name stays as it is."""
    entity, _dot, action = name.partition(".")
    if entity in RECORDS and action in EVENT_ACTIONS:
        return f"{RECORDS[entity]}: {EVENT_ACTIONS[action]}"
    return name


Users = Mapping[int, Any]


def _user(users: Users, uid: str) -> str:
    u = users.get(int(uid))
    return u.full_name if u is not None else _("user %(id)s", id=uid)


def _users(users: Users, ids: str) -> str:
    return ", ".join(_user(users, i.strip()) for i in ids.split(",") if i.strip())


def _started(m: re.Match[str], users: Users) -> str:
    who = _user(users, m["uid"]) if m["uid"] else _("the system")
    how = m["how"]
    if how.startswith("on '"):
        how = _("on «%(event)s»", event=crm_event(how[4:-1]))
    elif how.startswith("by the schedule of "):
        how = _("by the schedule of «%(timer)s»", timer=how[len("by the schedule of "):])
    else:
        how = _("manually")
    return _("version %(v)s started by %(who)s %(how)s", v=m["v"], who=who, how=how)


def _assigned(m: re.Match[str], users: Users) -> str:
    if m["uid"]:
        who = _user(users, m["uid"])
    else:
        who = _users(users, m["uids"])
    kind = str(ASSIGNMENT_KINDS.get(m["kind"], m["kind"]))
    text = _("«%(task)s» assigned to %(who)s by the rule «%(kind)s»", task=m["task"], who=who,
             kind=kind)
    return text + (f" ({assignment_note(m['note'])})" if m["note"] else "")


def _took(m: re.Match[str], users: Users) -> str:
    parts = re.findall(r"took flow (\S+) to ([^\s;]+)", m[0])
    return "; ".join(_("went by flow %(flow)s to %(to)s", flow=f, to=t) for f, t in parts)


def _sent(m: re.Match[str], users: Users) -> str:
    ids = [i for i in m["ids"].split(", ") if i]
    return ngettext("sent «%(name)s» to instance %(ids)s", "sent «%(name)s» to instances %(ids)s",
                    len(ids), name=m["name"], ids=", ".join(ids))


def _failed_after(m: re.Match[str], users: Users) -> str:
    n = int(m["n"])
    return ngettext("%(op)s failed after %(num)s attempt: %(msg)s",
                    "%(op)s failed after %(num)s attempts: %(msg)s", n, op=m["op"], msg=m["msg"])


Render = Callable[[re.Match[str], Users], str]
HISTORY_PATTERNS: list[tuple[re.Pattern[str], Render]] = [
    (re.compile(r"^$"), lambda m, u: ""),
    (re.compile(r"^v(?P<v>\d+) started by (?:user (?P<uid>\d+)|the system) "
                r"(?P<how>on '.*'|by the schedule of .*|manually)$", re.S), _started),
    (re.compile(r"^took flow \S+ to \S+(; took flow \S+ to \S+)*$"), _took),
    (re.compile(r"^called (?P<op>\S+)(?:; (?P<loop>.*))?$", re.S),
     lambda m, u: _("called %(op)s", op=m["op"]) + (f"; {loop_note(m['loop'])}" if m["loop"] else "")),
    (re.compile(r"^waiting for '(?P<what>.*)'$", re.S),
     lambda m, u: _("waiting for «%(what)s»", what=m["what"])),
    (re.compile(r"^process completed$"), lambda m, u: _("the process is completed")),
    (re.compile(r"^'(?P<task>.*)' assigned to (?:user (?P<uid>\d+)|users (?P<uids>[\d, ]*))"
                r"(?: \((?P<note>.*)\))? by (?P<kind>\S+) rule$", re.S), _assigned),
    (re.compile(r"^'(?P<task>.*)' claimed by user (?P<uid>\d+)$", re.S),
     lambda m, u: _("«%(task)s» taken by %(who)s", task=m["task"], who=_user(u, m["uid"]))),
    (re.compile(r"^'(?P<task>.*)' released by user (?P<uid>\d+)$", re.S),
     lambda m, u: _("«%(task)s» released by %(who)s", task=m["task"], who=_user(u, m["uid"]))),
    (re.compile(r"^'(?P<task>.*)' delegated by user (?P<a>\d+) to user (?P<b>\d+)$", re.S),
     lambda m, u: _("«%(task)s» passed by %(a)s to %(b)s", task=m["task"],
                    a=_user(u, m["a"]), b=_user(u, m["b"]))),
    (re.compile(r"^'(?P<task>.*)' completed by user (?P<uid>\d+)(?:; (?P<loop>.*))?$", re.S),
     lambda m, u: _("«%(task)s» completed by %(who)s", task=m["task"], who=_user(u, m["uid"]))
     + (f"; {loop_note(m['loop'])}" if m["loop"] else "")),
    (re.compile(r"^retried(?: by user (?P<uid>\d+))?$"),
     lambda m, u: _("retried by %(who)s", who=_user(u, m["uid"])) if m["uid"] else _("retried")),
    (re.compile(r"^moved from v(?P<a>\d+) to v(?P<b>\d+) \((?P<moves>.*)\)(?: by user (?P<uid>\d+))?$",
                re.S),
     lambda m, u: _("moved from version %(a)s to version %(b)s (%(moves)s)", a=m["a"], b=m["b"],
                    moves=_("nothing open") if m["moves"] == "nothing open" else m["moves"])
     + (" — " + _user(u, m["uid"]) if m["uid"] else "")),
    (re.compile(r"^task '(?P<task>.*)' withdrawn$", re.S),
     lambda m, u: _("task «%(task)s» withdrawn", task=m["task"])),
    (re.compile(r"^received '(?P<what>.*)'$", re.S),
     lambda m, u: _("received «%(what)s»", what=crm_event(m["what"]))),
    (re.compile(r"^timer fired \(already due\)$"), lambda m, u: _("the timer fired (already due)")),
    (re.compile(r"^cancelled(?: by user (?P<uid>\d+))?(?:: (?P<reason>.*))?$", re.S),
     lambda m, u: (_("cancelled by %(who)s", who=_user(u, m["uid"])) if m["uid"]
                   else _("cancelled")) + (f": {m['reason']}" if m["reason"] else "")),
    (re.compile(r"^sent '(?P<name>.*)' to instances? (?P<ids>[\d, ]+)$", re.S), _sent),
    (re.compile(r"^sent '(?P<name>.*)'; no instance of the record waited for it$", re.S),
     lambda m, u: _("sent «%(name)s»; no process of the record waited for it", name=m["name"])),
    (re.compile(r"^'(?P<name>.*)' not passed on: (?P<n>\d+) instances in a row sent messages to "
                r"each other$", re.S),
     lambda m, u: _("«%(name)s» not passed on: %(n)s processes in a row sent messages to each "
                    "other", name=m["name"], n=m["n"])),
    (re.compile(r"^(?P<op>\S+) failed \(attempt (?P<n>\d+)\): (?P<msg>.*)$", re.S),
     lambda m, u: _("%(op)s failed (attempt %(n)s): %(msg)s", op=m["op"], n=m["n"],
                    msg=m["msg"])),
    (re.compile(r"^(?P<op>\S+) failed after (?P<n>\d+) attempts?: (?P<msg>.*)$", re.S),
     _failed_after),
    (re.compile(r"^(?P<op>\S+) failed \((?P<code>[^)]*)\): (?P<msg>.*); caught by (?P<by>\S+)$",
                re.S),
     lambda m, u: _("%(op)s failed (%(code)s): %(msg)s; handled by %(by)s", op=m["op"],
                    code=m["code"], msg=m["msg"], by=m["by"])),
]

NOTE_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^candidates: members of role (?P<r>.*)$"),
     lambda m: _("candidates: members of the role %(role)s", role=m["r"])),
    (re.compile(r"^round robin over role (?P<r>.*)$"),
     lambda m: _("in turn among the role %(role)s", role=m["r"])),
    (re.compile(r"^least loaded member of role (?P<r>.*)$"),
     lambda m: _("the least loaded member of the role %(role)s", role=m["r"])),
    (re.compile(r"^deputy of (?P<u>.*) \(out of office\)$"),
     lambda m: _("deputy of %(user)s (out of office)", user=m["u"])),
    (re.compile(r"^delegated by user (?P<u>\d+)$"),
     lambda m: _("passed on by user %(id)s", id=m["u"])),
]


def assignment_note(note: str) -> str:
    for pattern, render in NOTE_PATTERNS:
        m = pattern.match(note)
        if m:
            return render(m)
    return note


def loop_note(text: str | None) -> str:
    """``instance 2 of 3`` / ``iteration 4`` of a loop step (engine.progress)."""
    m = re.match(r"^instance (\d+)(?: of (\d+))?$", text or "")
    if m:
        return (_("instance %(n)s of %(total)s", n=m[1], total=m[2]) if m[2]
                else _("instance %(n)s", n=m[1]))
    m = re.match(r"^iteration (\d+)$", text or "")
    return _("iteration %(n)s", n=m[1]) if m else (text or "")


def history_line(message: str | None, users: Users) -> str:
    """One history line of the engine in the user's language, naming users."""
    text = message or ""
    for pattern, render in HISTORY_PATTERNS:
        m = pattern.match(text)
        if m:
            return render(m, users)
    return text


def install(app: Any) -> None:
    app.jinja_env.filters.update(process_status=status, task_status=task_status,
                                 history_event=event_name)
    from .engine_messages import translate_message

    app.jinja_env.globals.update(process_record=record, history_line=history_line,
                                 engine_message=translate_message)
