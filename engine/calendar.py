"""Working time: the business calendar that timers with ``marshrut:businessHours`` count in.

The default is Marshrut's office week: Monday to Friday, 9:00–18:00 Europe/Moscow, no holidays
(configure ``BUSINESS_CALENDAR`` in the app to add them)::

    cal = BusinessCalendar.from_config({"timezone": "Europe/Moscow", "days": [1, 2, 3, 4, 5],
                                        "start": "09:00", "end": "18:00",
                                        "holidays": ["2026-01-01"], "workdays": ["2026-11-01"]})
    cal.add(friday_17h, dt.timedelta(hours=2))      # → Monday 10:00

Contract of :meth:`BusinessCalendar.add`: the result is the instant when ``duration`` of
working time has passed after ``start``; a start outside working time counts from the next
opening. Durations are wall-clock inside a working day, so a DST change never moves the
opening hours. ``working_time("P1D")`` is one working day (the length of the working hours),
``P1W`` one working week (as many working days as the week has). The module is pure: no I/O.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .extensions import parse_duration_parts

#: How far ahead ``add`` looks for working time before giving up (a calendar with every day a
#: holiday would otherwise loop for ever).
MAX_DAYS = 3 * 366


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name``; ValueError with a readable message otherwise."""
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise ValueError(f"'{name}' is not a time zone such as Europe/Moscow")
    try:
        return zoneinfo.ZoneInfo(name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{name}' (use an IANA name such as "
                         "Europe/Moscow)") from None


def _clock_time(value: Any, key: str) -> dt.time:
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{key}: '{value}' is not a time of day such as 09:00") from None


def _dates(values: Iterable[Any], key: str) -> frozenset[dt.date]:
    out = set()
    for v in values:
        try:
            out.add(v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)))
        except ValueError:
            raise ValueError(f"{key}: '{v}' is not a date (YYYY-MM-DD)") from None
    return frozenset(out)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and hours in one time zone, with holidays and extra working days."""

    timezone: str = "Europe/Moscow"
    days: tuple[int, ...] = (1, 2, 3, 4, 5)  # ISO weekdays: Monday = 1 … Sunday = 7
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(18, 0)
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    workdays: frozenset[dt.date] = field(default_factory=frozenset)  # e.g. a working Saturday

    def __post_init__(self) -> None:
        zone(self.timezone)
        if not self.days or any(d not in range(1, 8) for d in self.days):
            raise ValueError("days: give ISO weekdays 1 (Monday) … 7 (Sunday), at least one")
        if self.end <= self.start:
            raise ValueError("end: the working day must end after it starts")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> BusinessCalendar:
        """Read ``{"timezone", "days", "start", "end", "holidays", "workdays"}`` (all
        optional); ValueError naming the key at fault."""
        config = dict(config or {})
        unknown = set(config) - {"timezone", "days", "start", "end", "holidays", "workdays"}
        if unknown:
            raise ValueError(f"unknown business calendar keys: {', '.join(sorted(unknown))}")
        days = config.get("days", (1, 2, 3, 4, 5))
        if not isinstance(days, (list, tuple)) or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in days):
            raise ValueError("days: give a list of ISO weekdays such as [1, 2, 3, 4, 5]")
        return cls(timezone=str(config.get("timezone", "Europe/Moscow")),
                   days=tuple(sorted(set(days))),
                   start=_clock_time(config.get("start", "09:00"), "start"),
                   end=_clock_time(config.get("end", "18:00"), "end"),
                   holidays=_dates(config.get("holidays", ()), "holidays"),
                   workdays=_dates(config.get("workdays", ()), "workdays"))

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def day_length(self) -> dt.timedelta:
        return (dt.datetime.combine(dt.date.min, self.end)
                - dt.datetime.combine(dt.date.min, self.start))

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.isoweekday() in self.days and day not in self.holidays

    def working_time(self, text: str) -> dt.timedelta:
        """An ISO 8601 duration read as working time: D = one working day, W = one working
        week; hours, minutes and seconds as they are. ValueError if it is not a duration."""
        weeks, days, seconds = parse_duration_parts(text)
        return (weeks * len(self.days) + days) * self.day_length + dt.timedelta(seconds=seconds)

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """``start`` plus ``duration`` of working time, in UTC (see the module docstring)."""
        if start.tzinfo is None:
            raise ValueError("naive datetime given to the business calendar")
        tz = self.tz
        cursor = start.astimezone(tz)
        remaining = duration
        if remaining <= dt.timedelta(0):
            return start.astimezone(dt.UTC)
        for _ in range(MAX_DAYS):
            day = cursor.date()
            if self.is_working_day(day):
                opens = dt.datetime.combine(day, self.start, tz)
                closes = dt.datetime.combine(day, self.end, tz)
                cursor = max(cursor, opens)
                if cursor < closes:
                    available = closes - cursor
                    if remaining <= available:
                        return (cursor + remaining).astimezone(dt.UTC)
                    remaining -= available
            cursor = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz)
        raise ValueError(f"the business calendar has no working time within {MAX_DAYS} days")
