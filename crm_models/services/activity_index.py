"""The activity index: how many CRM actions each employee and each department took per day,
week or month, and the total.

An action is an audit event a person wrote on a lead, deal, contact or company (creating,
changing, moving a stage, commenting, planning or completing an activity, converting,
deleting); processes, imports and consequences (``unlinked``) do not count.

Whose numbers an actor sees follows their broadest CRM read level: "all" (or the
``manage_settings`` right) — everyone, and the total is the company's; "own" — only their
own; department levels — their department (and sub-departments). Days are the actor's
calendar days (their time zone).
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Date, cast, func, select
from sqlalchemy.orm import Session

from ..activity import AuditEvent
from ..errors import ValidationFailed
from ..org import Department, PermLevel, User
from ..permissions import Actor
from .feed import CRM_ENTITIES

PERIODS = ("day", "week", "month")
#: How many buckets each period shows, ending with the current one.
SPAN = {"day": 14, "week": 12, "month": 12}
COUNTED_ACTIONS = ("created", "updated", "stage_changed", "commented", "activity_added",
                   "activity_done", "converted", "deleted")


@dataclass
class Row:
    """One employee's or department's counts, one per bucket, and their sum."""

    key: int | None
    label: str
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass
class IndexReport:
    period: str
    buckets: list[dt.date]  # first day of each bucket, oldest first
    employees: list[Row]  # most active first
    departments: list[Row]
    total: Row
    company_wide: bool  # the total is the whole company's (else: what the actor may see)
    start: dt.date = field(default_factory=dt.date.today)


def visible_employees(actor: Actor) -> set[int] | None:
    """Ids of the users whose numbers ``actor`` may see; None means everyone."""
    level = max((actor.level(e, "read") for e in CRM_ENTITIES), default=PermLevel.NONE)
    if level == PermLevel.ALL or actor.is_admin:
        return None
    users = {actor.user_id} if actor.user_id is not None else set()
    if level >= PermLevel.DEPARTMENT:
        users |= actor.department_user_ids
    if level >= PermLevel.SUBDEPARTMENTS:
        users |= actor.subtree_user_ids
    return users


def bucket_starts(period: str, today: dt.date) -> list[dt.date]:
    """The first days of the last ``SPAN[period]`` buckets up to the one holding ``today``."""
    n = SPAN[period]
    if period == "day":
        return [today - dt.timedelta(days=n - 1 - i) for i in range(n)]
    if period == "week":
        monday = today - dt.timedelta(days=today.weekday())
        return [monday - dt.timedelta(weeks=n - 1 - i) for i in range(n)]
    out = []
    year, month = today.year, today.month
    for _ in range(n):
        out.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def _bucket_of(day: dt.date, period: str) -> dt.date:
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def _local_day(session: Session, tz: str, now: dt.datetime) -> ColumnElement[Any]:
    """A SQL expression: the event's calendar day in ``tz``. PostgreSQL converts exactly;
    SQLite shifts by the zone's current UTC offset (exact for zones without daylight saving
    time, such as Russia's)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(tz, func.timezone("UTC", AuditEvent.at)), Date)
    offset = now.astimezone(zoneinfo.ZoneInfo(tz)).utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds() // 60)
    return func.date(AuditEvent.at, f"{minutes:+d} minutes")


def activity_index(session: Session, actor: Actor, *, period: str = "day",
                   now: dt.datetime | None = None) -> IndexReport:
    """Counts per bucket of ``period`` (day, week or month) for what ``actor`` may see."""
    if period not in PERIODS:
        raise ValidationFailed({"period": "must be one of: " + ", ".join(PERIODS)})
    now = now or dt.datetime.now(dt.UTC)
    tz = actor.timezone or "Europe/Moscow"
    today = now.astimezone(zoneinfo.ZoneInfo(tz)).date()
    buckets = bucket_starts(period, today)
    first = buckets[0]
    # A day's margin either side of the window: the exact cut is made on local days below.
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC) - dt.timedelta(days=1)
    allowed = visible_employees(actor)
    day = _local_day(session, tz, now).label("day")
    q = (select(AuditEvent.actor_user_id, day, func.count())
         .where(AuditEvent.at >= since, AuditEvent.actor_user_id.is_not(None),
                AuditEvent.entity_type.in_(CRM_ENTITIES),
                AuditEvent.action.in_(COUNTED_ACTIONS))
         .group_by(AuditEvent.actor_user_id, day))
    if allowed is not None:
        q = q.where(AuditEvent.actor_user_id.in_(sorted(allowed)) if allowed
                    else AuditEvent.id.is_(None))
    index = {b: i for i, b in enumerate(buckets)}
    per_user: dict[int, list[int]] = {}
    for uid, raw_day, count in session.execute(q):
        d = raw_day if isinstance(raw_day, dt.date) else dt.date.fromisoformat(str(raw_day))
        slot = index.get(_bucket_of(d, period))
        if slot is None or d > today:
            continue
        per_user.setdefault(uid, [0] * len(buckets))[slot] += count
    user_ids = set(per_user) | (allowed or set())
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(sorted(user_ids))))}
    employees = [Row(uid, users[uid].full_name if uid in users else f"#{uid}",
                     per_user.get(uid, [0] * len(buckets)))
                 for uid in user_ids if uid in users and (uid in per_user or users[uid].active)]
    employees.sort(key=lambda r: (-r.total, r.label))
    deps = {d.id: d.name for d in session.scalars(select(Department))}
    by_dep: dict[int | None, list[int]] = {}
    for row in employees:
        dep_id = users[row.key].department_id if row.key in users else None
        sums = by_dep.setdefault(dep_id, [0] * len(buckets))
        for i, c in enumerate(row.counts):
            sums[i] += c
    departments = [Row(dep_id, deps.get(dep_id, "") if dep_id is not None else "", counts)
                   for dep_id, counts in by_dep.items()]
    departments.sort(key=lambda r: (-r.total, r.label))
    total = Row(None, "", [sum(r.counts[i] for r in employees) for i in range(len(buckets))])
    return IndexReport(period, buckets, employees, departments, total,
                       company_wide=allowed is None, start=first)
