"""Sales reports: the funnel of a pipeline with conversion between stages, lead → deal
conversion by source, deals won and lost by manager and by month.

Each report counts only the records the actor may read (``Actor.scope``), so a manager sees
his own figures and a head of department his department's. Filters (``ReportFilter``): a
period of days (in the business time zone), a pipeline, a department (with its
sub-departments: the records' responsible users in it).

Definitions (what a hand calculation must give):

* **Funnel** — deals of the pipeline *created* in the period. A deal *reached* a stage if it
  ever was in that stage or in a later one of the pipeline's open/won stages (its current
  stage and every stage of its ``stage_changed`` history count; a lost stage reaches
  nothing). Conversion to a stage = reached(stage) / reached(previous stage).
* **Lead conversion** — leads created in the period, by source: how many, how many are
  converted (status CONVERTED), the rate.
* **Won / lost** — deals *closed* in the period: moved into a won or lost stage then (the
  last such move; a deal created closed counts at its creation), by responsible manager and
  by month; won amounts summed per currency.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..activity import AuditEvent
from ..entities import Deal, Lead, Pipeline, Stage, StageSemantics
from ..errors import ValidationFailed
from ..org import Department, User
from ..permissions import Actor, department_tree, descendants

MAX_DAYS = 3660


@dataclass(frozen=True)
class ReportFilter:
    start: dt.date
    end: dt.date  # inclusive
    pipeline_id: int | None = None
    department_id: int | None = None
    tz: str = "Europe/Moscow"

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """[start 00:00, day after end 00:00) in the time zone, as UTC."""
        zone = ZoneInfo(self.tz)
        lo = dt.datetime.combine(self.start, dt.time(), zone).astimezone(dt.UTC)
        hi = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(),
                                 zone).astimezone(dt.UTC)
        return lo, hi

    def local_month(self, at: dt.datetime) -> str:
        return at.astimezone(ZoneInfo(self.tz)).strftime("%Y-%m")


def _int_or_none(raw: Any, name: str, errors: dict[str, str]) -> int | None:
    if raw in (None, ""):
        return None
    text = str(raw).strip()
    if not text.isdigit() or len(text) > 9:
        errors[name] = "must be a whole number"
        return None
    return int(text)


def parse_filter(session: Session, raw: dict[str, Any], *, today: dt.date,
                 tz: str = "Europe/Moscow") -> ReportFilter:
    """A filter from query values ``from``, ``to`` (YYYY-MM-DD; the last 30 days by
    default), ``pipeline_id`` and ``department_id``; errors name the parameter."""
    errors: dict[str, str] = {}
    days: dict[str, dt.date] = {}
    for name, default in (("from", today - dt.timedelta(days=29)), ("to", today)):
        value = raw.get(name)
        if value in (None, ""):
            days[name] = default
            continue
        try:
            days[name] = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            errors[name] = "must be a date YYYY-MM-DD"
    if not errors and days["from"] > days["to"]:
        errors["to"] = "must not be before the start of the period"
    elif not errors and (days["to"] - days["from"]).days > MAX_DAYS:
        errors["from"] = f"the period must be at most {MAX_DAYS} days"
    pipeline_id = _int_or_none(raw.get("pipeline_id"), "pipeline_id", errors)
    if pipeline_id is not None and session.get(Pipeline, pipeline_id) is None:
        errors["pipeline_id"] = f"no pipeline with id {pipeline_id}"
    department_id = _int_or_none(raw.get("department_id"), "department_id", errors)
    if department_id is not None and session.get(Department, department_id) is None:
        errors["department_id"] = f"no department with id {department_id}"
    if errors:
        raise ValidationFailed(errors)
    return ReportFilter(days["from"], days["to"], pipeline_id, department_id, tz)


def department_users(session: Session, department_id: int | None) -> set[int] | None:
    """Users of the department and its sub-departments (None: no department filter)."""
    if department_id is None:
        return None
    deps = descendants(department_tree(session), [department_id])
    return set(session.scalars(select(User.id).where(User.department_id.in_(sorted(deps)))))


def user_labels(session: Session, ids: set[int]) -> dict[int, tuple[str, int | None]]:
    """User id → (full name, department id)."""
    if not ids:
        return {}
    return {u.id: (u.full_name, u.department_id)
            for u in session.scalars(select(User).where(User.id.in_(sorted(ids))))}


def _stage_moves(session: Session, deal_ids: list[int]) -> dict[int, list[AuditEvent]]:
    out: dict[int, list[AuditEvent]] = defaultdict(list)
    for i in range(0, len(deal_ids), 500):
        chunk = deal_ids[i:i + 500]
        for ev in session.scalars(select(AuditEvent).where(
                AuditEvent.entity_type == "deal", AuditEvent.action == "stage_changed",
                AuditEvent.entity_id.in_(chunk)).order_by(AuditEvent.at, AuditEvent.id)):
            out[ev.entity_id].append(ev)
    return out


# --- funnel --------------------------------------------------------------------------------

@dataclass
class FunnelStage:
    code: str
    name: str
    semantics: str
    reached: int = 0
    now: int = 0  # deals in this stage now
    conversion: float | None = None  # % of the previous stage's reached


@dataclass
class Funnel:
    pipeline_id: int
    pipeline_name: str
    deals: int
    stages: list[FunnelStage]
    lost: int  # deals in a lost stage now
    lost_stages: list[FunnelStage] = field(default_factory=list)


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def funnel(session: Session, actor: Actor, flt: ReportFilter) -> Funnel:
    actor.require("deal", "read")
    pipeline_id = flt.pipeline_id if flt.pipeline_id is not None else 0
    pipeline = session.get(Pipeline, pipeline_id)
    stages = list(session.scalars(select(Stage).where(Stage.pipeline_id == pipeline_id)
                                  .order_by(Stage.sort, Stage.id)))
    lo, hi = flt.bounds()
    stmt = select(Deal.id, Stage.code).join(Stage, Stage.id == Deal.stage_id).where(
        actor.scope(Deal, "read"), Deal.pipeline_id == pipeline_id, Deal.created_at >= lo,
        Deal.created_at < hi)
    users = department_users(session, flt.department_id)
    if users is not None:
        stmt = stmt.where(Deal.responsible_id.in_(sorted(users)))
    current = dict(session.execute(stmt).all())
    ladder = [s for s in stages if s.semantics != StageSemantics.LOST]
    index = {s.code: i for i, s in enumerate(ladder)}
    moves = _stage_moves(session, sorted(current))
    furthest: list[int] = []
    for deal_id, code in current.items():
        held = {code}
        for ev in moves.get(deal_id, ()):
            held.update(c for c in (ev.changes or {}).get("stage", ()) if isinstance(c, str))
        reached = [index[c] for c in held if c in index]
        if reached:
            furthest.append(max(reached))
    now = Counter(current.values())
    rows = [FunnelStage(s.code, s.name, s.semantics, now=now[s.code]) for s in ladder]
    for i, row in enumerate(rows):
        row.reached = sum(1 for f in furthest if f >= i)
        if i:
            row.conversion = _percent(row.reached, rows[i - 1].reached)
    lost_stages = [FunnelStage(s.code, s.name, s.semantics, now=now[s.code])
                   for s in stages if s.semantics == StageSemantics.LOST]
    return Funnel(pipeline_id, pipeline.name if pipeline else "", len(current), rows,
                  sum(s.now for s in lost_stages), lost_stages)


# --- lead conversion -----------------------------------------------------------------------

@dataclass
class SourceRow:
    source: str
    leads: int
    converted: int

    @property
    def rate(self) -> float | None:
        return _percent(self.converted, self.leads)


def lead_conversion(session: Session, actor: Actor, flt: ReportFilter) -> list[SourceRow]:
    """By source (empty source: ""), most leads first; the last row is the total."""
    actor.require("lead", "read")
    lo, hi = flt.bounds()
    stmt = select(Lead.source, Lead.status).where(
        actor.scope(Lead, "read"), Lead.created_at >= lo, Lead.created_at < hi)
    users = department_users(session, flt.department_id)
    if users is not None:
        stmt = stmt.where(Lead.responsible_id.in_(sorted(users)))
    leads: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    for source, status in session.execute(stmt):
        leads[source or ""] += 1
        converted[source or ""] += status == "CONVERTED"
    rows = [SourceRow(s, n, converted[s]) for s, n in sorted(
        leads.items(), key=lambda kv: (-kv[1], kv[0]))]
    rows.append(SourceRow("*", sum(leads.values()), sum(converted.values())))
    return rows


# --- won / lost ----------------------------------------------------------------------------

@dataclass
class WonLostRow:
    key: Any  # user id, or "YYYY-MM"
    label: str
    won: int = 0
    lost: int = 0
    won_amount: dict[str, Decimal] = field(default_factory=dict)

    @property
    def win_rate(self) -> float | None:
        return _percent(self.won, self.won + self.lost)


@dataclass
class WonLost:
    by_manager: list[WonLostRow]
    by_month: list[WonLostRow]
    total: WonLostRow


def won_lost(session: Session, actor: Actor, flt: ReportFilter) -> WonLost:
    actor.require("deal", "read")
    lo, hi = flt.bounds()
    closed_codes = dict(session.execute(select(Stage.code, Stage.semantics).where(
        Stage.semantics.in_([StageSemantics.WON.value, StageSemantics.LOST.value]))).all())
    stmt = select(Deal.id, Deal.responsible_id, Deal.amount, Deal.currency, Deal.created_at,
                  Stage.code).join(Stage, Stage.id == Deal.stage_id).where(
        actor.scope(Deal, "read"), Stage.code.in_(sorted(closed_codes)))
    if flt.pipeline_id is not None:
        stmt = stmt.where(Deal.pipeline_id == flt.pipeline_id)
    users = department_users(session, flt.department_id)
    if users is not None:
        stmt = stmt.where(Deal.responsible_id.in_(sorted(users)))
    deals = session.execute(stmt).all()
    moves = _stage_moves(session, [d.id for d in deals])
    managers: dict[int, WonLostRow] = {}
    months: dict[str, WonLostRow] = {}
    total = WonLostRow("*", "")
    for d in deals:
        closed_at = d.created_at
        for ev in moves.get(d.id, ()):
            new = (ev.changes or {}).get("stage", [None, None])[-1]
            if new in closed_codes:
                closed_at = ev.at
        if not lo <= closed_at < hi:
            continue
        month = flt.local_month(closed_at)
        for row in (managers.setdefault(d.responsible_id, WonLostRow(d.responsible_id, "")),
                    months.setdefault(month, WonLostRow(month, month)), total):
            if closed_codes[d.code] == StageSemantics.WON:
                row.won += 1
                row.won_amount[d.currency] = row.won_amount.get(d.currency, Decimal("0")) + (
                    d.amount or Decimal("0"))
            else:
                row.lost += 1
    names = user_labels(session, set(managers))
    for uid, row in managers.items():
        row.label = names.get(uid, (f"#{uid}", None))[0]
    return WonLost(sorted(managers.values(), key=lambda r: (-r.won, r.label)),
                   [months[m] for m in sorted(months)], total)
