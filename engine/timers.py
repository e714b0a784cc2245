"""Timer expressions: what a BPMN timer says, when it is due, when a schedule fires next.

Pure functions of their arguments (no clock, no database). Three kinds of timer definition
(see ``engine.extensions`` for the XML):

* ``timeDuration`` — an ISO 8601 duration (``PT2H``, ``P3D``, ``P1W``) counted from the moment
  the timer starts waiting; with ``marshrut:businessHours="true"`` it counts working time of
  the business calendar (``engine.calendar``). Boundary and intermediate events, and the
  start events of event sub-processes (counted from when their (sub-)process starts).
* ``timeDate`` — an ISO 8601 date-time (``2026-03-02T09:00``); without an offset it is read in
  the event's ``marshrut:timezone`` (default: the engine's time zone). Any timer event.
* ``timeCycle`` — start events (of a process, or of a non-interrupting event sub-process: it
  starts again at each occurrence while its scope runs) and non-interrupting boundary events
  (each occurrence runs the boundary's path once while the activity stays active,
  ``engine.timer_events``): an ISO 8601 repeating interval ``R[n]/<start>/<period>``
  (``R/2026-01-05T09:00/P1D`` every day at 9:00, ``R5/…`` five times, ``R/PT1H`` hourly from
  activation) or a five-field cron expression (``0 9 * * 1-5``: 9:00 on weekdays; 0 and 7 are
  Sunday as in crontab; ``@daily``, ``@hourly``, ``@weekly``, ``@monthly``, ``@yearly``), in the
  event's time zone. Cron that restricts both the day of month and the day of week is refused
  (crontab would OR them, which is rarely meant).

A schedule's occurrences are numbered (``sequence``) so ``R5`` stops after five. After downtime
:func:`next_due` skips every occurrence that is already past: a missed fire runs once.
Expressions may be wrapped in quotes (``"PT2H"``, as SpiffWorkflow's expression style writes
them); the quotes are dropped.
"""
from __future__ import annotations

import calendar as _cal
import datetime as dt
import re
from dataclasses import asdict, dataclass
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from strictnum import int_or_none, is_digits

from .calendar import BusinessCalendar, zone
from .extensions import B, M, parse_duration

DURATION, DATE, CYCLE, CRON = "duration", "date", "cycle", "cron"
_TAGS = {"timeDuration": DURATION, "timeDate": DATE, "timeCycle": CYCLE}
_PERIOD = re.compile(r"P(?:(\d{1,4})Y)?(?:(\d{1,5})M)?(?:(\d{1,5})W)?(?:(\d{1,6})D)?"
                     r"(?:T(?:(\d{1,7})H)?(?:(\d{1,9})M)?(?:(\d{1,10})S)?)?\Z", re.ASCII)
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
           "@annually": "0 0 1 1 *"}
#: Longest search for a schedule's next occurrence (a cron such as Feb 30 never fires).
_HORIZON = dt.timedelta(days=5 * 366)


@dataclass(frozen=True)
class TimerSpec:
    """One timer event as deployed: ``kind`` is duration, date, cycle or cron."""

    element_id: str
    kind: str
    expression: str
    timezone: str
    business_hours: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimerSpec:
        return cls(d["element_id"], d["kind"], d["expression"], d["timezone"],
                   bool(d.get("business_hours")))


def unquote(text: str) -> str:
    text = (text or "").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


# --- reading and checking ----------------------------------------------------------------------

def read_timer(el: Any, default_tz: str, *, start: bool,
               problems: list[tuple[str, str]],
               event_subprocess: str | None = None,
               boundary: str | None = None) -> TimerSpec | None:
    """The timer of event ``el`` (which has a bpmn:timerEventDefinition), or None with the
    reasons added to ``problems`` as (element id, message). ``start``: a process's timer
    start event (a schedule: a cycle or a date). ``event_subprocess``: the start event of an
    event sub-process, ``"interrupting"`` (a duration or a date: it starts once) or
    ``"non-interrupting"`` (a cycle too: it starts each time). ``boundary``: a boundary event,
    ``"interrupting"`` (it fires once) or ``"non-interrupting"`` (a cycle too: its path runs
    at each occurrence while the activity is active)."""
    eid = el.get("id", "")
    definition = el.find(f"{B}timerEventDefinition")
    parts = [(c, _TAGS[c.tag[len(B):]]) for c in (definition if definition is not None else ())
             if isinstance(c.tag, str) and c.tag.startswith(B) and c.tag[len(B):] in _TAGS]
    if len(parts) != 1:
        problems.append((eid, "the timer needs exactly one of timeDuration, timeDate or "
                              "timeCycle" if not parts else
                              "the timer has more than one of timeDuration, timeDate, timeCycle"))
        return None
    node, kind = parts[0]
    text = unquote(node.text or "")
    tz = (el.get(f"{M}timezone") or default_tz).strip()
    business = (el.get(f"{M}businessHours") or "false").strip().lower()
    found = len(problems)
    if business not in ("true", "false"):
        problems.append((eid, f"marshrut:businessHours must be true or false, not '{business}'"))
    try:
        zone(tz)
    except ValueError as exc:
        problems.append((eid, f"marshrut:timezone: {exc}"))
    if not text:
        problems.append((eid, f"the timer's {node.tag[len(B):]} is empty"))
    if kind == CYCLE and not text.upper().startswith("R"):
        kind = CRON
    if start and kind == DURATION:
        problems.append((eid, "a timer start event needs a timeCycle (ISO repeating interval "
                              "or cron) or a timeDate, not a timeDuration"))
    if event_subprocess == "interrupting" and kind in (CYCLE, CRON):
        problems.append((eid, "an interrupting event sub-process starts once: a timeCycle is "
                              "for a non-interrupting one (isInterrupting=\"false\"); use a "
                              "timeDuration or timeDate here"))
    elif boundary == "interrupting" and kind in (CYCLE, CRON):
        problems.append((eid, f"boundary timer {eid} interrupts its activity, so it fires "
                              "once: a timeCycle is for a non-interrupting boundary timer "
                              "(cancelActivity=\"false\"); use a timeDuration or timeDate "
                              "here"))
    elif not start and event_subprocess is None and boundary is None \
            and kind in (CYCLE, CRON):
        problems.append((eid, "timeCycle is for timer start events and non-interrupting "
                              "boundary timers; use a timeDuration or timeDate here"))
    if business == "true" and kind != DURATION:
        problems.append((eid, "marshrut:businessHours applies to a timeDuration only"))
    if len(problems) > found:
        return None
    spec = TimerSpec(eid, kind, text, tz, business == "true")
    message = check(spec)
    if message:
        problems.append((eid, message))
        return None
    return spec


def event_subprocess_kind(el: Any) -> str | None:
    """For the start event of an event sub-process: ``"interrupting"`` (the default of
    ``isInterrupting``) or ``"non-interrupting"``; None for any other event."""
    parent = el.getparent()
    if el.tag != f"{B}startEvent" or parent is None or parent.tag != f"{B}subProcess" \
            or parent.get("triggeredByEvent") != "true":
        return None
    flag = (el.get("isInterrupting") or "true").strip().lower()
    return "non-interrupting" if flag == "false" else "interrupting"


def boundary_kind(el: Any) -> str | None:
    """For a boundary event: ``"interrupting"`` (the default of ``cancelActivity``) or
    ``"non-interrupting"``; None for any other event."""
    if el.tag != f"{B}boundaryEvent":
        return None
    flag = (el.get("cancelActivity") or "true").strip().lower()
    return "non-interrupting" if flag == "false" else "interrupting"


def check(spec: TimerSpec) -> str | None:
    """What is wrong with the expression of ``spec`` (None if it is usable)."""
    tz = zone(spec.timezone)
    try:
        if spec.kind == DURATION:
            if parse_duration(spec.expression) <= dt.timedelta(0):
                return f"timeDuration '{spec.expression}' is zero; give a positive duration"
        elif spec.kind == DATE:
            parse_date(spec.expression, tz)
        elif spec.kind == CYCLE:
            parse_cycle(spec.expression, tz)
        elif spec.kind == CRON:
            trigger = cron_trigger(spec.expression, tz)
            probe = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            if _cron_after(trigger, probe) is None:
                return f"cron '{spec.expression}' never fires"
    except (ValueError, OverflowError) as exc:
        what = {DURATION: "timeDuration", DATE: "timeDate", CYCLE: "timeCycle",
                CRON: "timeCycle"}[spec.kind]
        return f"{what}: {exc}"
    return None


# --- dates, periods, cycles, cron ---------------------------------------------------------------

def parse_date(text: str, tz: dt.tzinfo) -> dt.datetime:
    """An ISO 8601 date or date-time; without an offset it is local time in ``tz``."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO 8601 date-time such as "
                         "2026-03-02T09:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(dt.UTC)


@dataclass(frozen=True)
class Period:
    """An ISO 8601 duration with calendar parts: months (years × 12), days, seconds."""

    months: int
    days: int
    seconds: int

    def times(self, local: dt.datetime, k: int) -> dt.datetime:
        """``local`` + k periods, in ``local``'s wall-clock time (months clamp the day)."""
        if self.months:
            month0 = local.month - 1 + self.months * k
            year, month = local.year + month0 // 12, month0 % 12 + 1
            if not dt.MINYEAR <= year <= dt.MAXYEAR:
                raise OverflowError("date out of range")
            day = min(local.day, _cal.monthrange(year, month)[1])
            local = local.replace(year=year, month=month, day=day)
        step = dt.timedelta(days=self.days * k, seconds=self.seconds * k)
        if self.months or self.days:
            return local + step  # calendar periods keep the wall-clock time across DST
        return (local.astimezone(dt.UTC) + step).astimezone(local.tzinfo)  # PT1H: real hours

    @property
    def longest(self) -> dt.timedelta:
        """An upper bound of one period's real length (31-day months, a gained DST hour)."""
        days = self.months * 31 + self.days
        return dt.timedelta(days=days, seconds=self.seconds) + dt.timedelta(
            hours=1 if days else 0)


def parse_period(text: str) -> Period:
    m = _PERIOD.match(text.strip().upper())
    if not m or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(f"'{text}' is not an ISO 8601 duration such as P1D or PT1H")
    y, mo, w, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    period = Period(y * 12 + mo, w * 7 + d, h * 3600 + mi * 60 + s)
    if not (period.months or period.days or period.seconds):
        raise ValueError(f"the period '{text}' is zero")
    return period


@dataclass(frozen=True)
class Cycle:
    """``R[repeats]/[start/]period``; ``start`` None means "one period after activation"."""

    repeats: int | None
    start: dt.datetime | None  # local time in the timer's zone
    period: Period


def parse_cycle(text: str, tz: dt.tzinfo) -> Cycle:
    parts = text.strip().split("/")
    head = parts[0].upper()
    if not head.startswith("R") or len(parts) not in (2, 3):
        raise ValueError(f"'{text}' is not an ISO 8601 repeating interval such as "
                         "R/2026-01-05T09:00/P1D")
    count = head[1:]
    repeat = int_or_none(count, minimum=1, maximum=999_999_999) if count else None
    if count and (repeat is None or not is_digits(count)):
        raise ValueError(f"the repeat count '{count}' must be a whole number from 1")
    if len(parts) == 2:
        return Cycle(repeat, None, parse_period(parts[1]))
    if parts[1].upper().startswith("P"):
        raise ValueError(f"'{text}': give R/<start>/<period> (an end date is not supported)")
    start = parse_date(parts[1], tz).astimezone(tz)
    return Cycle(repeat, start, parse_period(parts[2]))


def _dow_field(text: str) -> str:
    """A crontab day-of-week field (0/7 = Sunday) as APScheduler names (its 0 is Monday)."""
    if text == "*":
        return "*"
    days: set[int] = set()
    for item in text.lower().split(","):
        rng, _, step_text = item.partition("/")
        step = int_or_none(step_text, minimum=1, maximum=7) if is_digits(step_text) else None
        if step_text and step is None:
            raise ValueError(f"bad step in day of week '{text}'")
        if rng == "*":
            lo, hi = 0, 6
        else:
            a, _, b = rng.partition("-")
            lo, hi = _dow_number(a, text), _dow_number(b, text) if b else None
            if hi is None:
                hi = 6 if step else lo
            if hi == 0 and lo > 0:
                hi = 7  # "5-0" / "fri-sun": through Sunday
            if hi < lo:
                raise ValueError(f"day-of-week range '{rng}' runs backwards")
        days.update(d % 7 for d in range(lo, hi + 1, step or 1))
    return ",".join(_DOW_NAMES[d] for d in (1, 2, 3, 4, 5, 6, 0) if d in days)


def _dow_number(token: str, field: str) -> int:
    if token in _DOW_NAMES:
        return _DOW_NAMES.index(token)
    number = int_or_none(token, minimum=0, maximum=7) if is_digits(token) else None
    if number is not None:
        return number
    raise ValueError(f"'{token}' in day of week '{field}' is not 0-7 or a day name")


def cron_trigger(text: str, tz: dt.tzinfo) -> CronTrigger:
    """A crontab expression as an APScheduler trigger in ``tz`` (ValueError if malformed)."""
    expr = _MACROS.get(text.strip().lower(), text.strip())
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"'{text}' is neither R/<start>/<period> nor a cron expression with "
                         "five fields (minute hour day month weekday)")
    minute, hour, day, month, dow = fields
    if day not in ("*", "?") and dow not in ("*", "?"):
        raise ValueError(f"'{text}' restricts both the day of month and the day of week; "
                         "restrict one of them")
    if "?" in (day, dow):
        raise ValueError("'?' is not crontab syntax; use '*'")
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                           day_of_week=_dow_field(dow), timezone=tz)
    except ValueError as exc:
        raise ValueError(f"cron '{text}': {exc}") from None


def _cron_after(trigger: CronTrigger, after: dt.datetime) -> dt.datetime | None:
    # APScheduler returns fire times >= now (to the second); we want strictly after.
    nxt = trigger.get_next_fire_time(None, after + dt.timedelta(microseconds=1))
    if nxt is None or nxt - after > _HORIZON:
        return None
    return nxt.astimezone(dt.UTC)


# --- when things are due --------------------------------------------------------------------

def due_of(spec: TimerSpec, now: dt.datetime, calendar: BusinessCalendar) -> dt.datetime:
    """When an instance timer that starts waiting at ``now`` is due (UTC)."""
    if spec.kind == DURATION:
        if spec.business_hours:
            return calendar.add(now, calendar.working_time(spec.expression))
        return now + parse_duration(spec.expression)
    if spec.kind == DATE:
        return parse_date(spec.expression, zone(spec.timezone))
    raise ValueError(f"{spec.kind} timers start processes; they do not wait in one")


def first_due(spec: TimerSpec, now: dt.datetime) -> tuple[dt.datetime, int] | None:
    """The first occurrence after ``now`` of a schedule being activated, with its sequence
    number; None if it never fires again (a past timeDate, an exhausted ``R5``)."""
    tz = zone(spec.timezone)
    if spec.kind == DATE:
        due = parse_date(spec.expression, tz)
        return (due, 0) if due > now else None
    if spec.kind == CRON:
        due = _cron_after(cron_trigger(spec.expression, tz), now)
        return None if due is None else (due, 0)
    cycle = parse_cycle(spec.expression, tz)
    if cycle.start is None:  # R/PT1H: the first one a period after activation
        return _cycle_after(cycle, now.astimezone(tz), -1, now, 1)
    return _cycle_after(cycle, cycle.start, 0, now, 0)


def next_due(spec: TimerSpec, due: dt.datetime, sequence: int,
             now: dt.datetime) -> tuple[dt.datetime, int] | None:
    """The occurrence after the one due at ``due`` (number ``sequence``) that is still ahead
    of ``now`` — occurrences missed while nobody was running are skipped — or None."""
    tz = zone(spec.timezone)
    after = max(due, now)
    if spec.kind == DATE:
        return None
    if spec.kind == CRON:
        nxt = _cron_after(cron_trigger(spec.expression, tz), after)
        return None if nxt is None else (nxt, sequence + 1)
    cycle = parse_cycle(spec.expression, tz)
    if cycle.start is None:  # chained: each occurrence a period after the previous one
        return _cycle_after(cycle, due.astimezone(tz), sequence, after, 1)
    return _cycle_after(cycle, cycle.start, 0, after, sequence + 1)


def _cycle_after(cycle: Cycle, base: dt.datetime, base_number: int, after: dt.datetime,
                 min_steps: int) -> tuple[dt.datetime, int] | None:
    """The first ``base + j·period`` (j ≥ ``min_steps``, occurrence number
    ``base_number + j``) strictly after ``after``, or None once the repeats are used up."""
    elapsed = after - base.astimezone(dt.UTC)
    # base + j·longest bounds occurrence j from above, so no earlier j can be after ``after``.
    j = max(min_steps, int(elapsed / cycle.period.longest) if elapsed > dt.timedelta(0) else 0)
    while True:
        number = base_number + j
        if cycle.repeats is not None and number >= cycle.repeats:
            return None
        at = cycle.period.times(base, j).astimezone(dt.UTC)
        if at > after:
            return at, number
        j += 1
