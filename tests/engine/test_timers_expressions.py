"""Timer expressions and the business calendar, as pure functions: ISO 8601 cycles and cron in
time zones (Moscow has no DST; Berlin does), missed occurrences, working-time arithmetic."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from engine.calendar import BusinessCalendar
from engine.timers import CRON, CYCLE, DATE, DURATION, TimerSpec, check, due_of, first_due, next_due

MSK = zoneinfo.ZoneInfo("Europe/Moscow")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
CAL = BusinessCalendar()


def msk(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=MSK).astimezone(dt.UTC)


def spec(kind: str, expression: str, tz: str = "Europe/Moscow") -> TimerSpec:
    return TimerSpec("T", kind, expression, tz)


def occurrences(s: TimerSpec, now: dt.datetime, n: int) -> list[dt.datetime]:
    out: list[dt.datetime] = []
    nxt = first_due(s, now)
    while nxt is not None and len(out) < n:
        out.append(nxt[0])
        nxt = next_due(s, nxt[0], nxt[1], nxt[0])
    return out


# --- cron -----------------------------------------------------------------------------------------

def test_cron_weekday_mornings_in_moscow():
    s = spec(CRON, "0 9 * * 1-5")
    got = occurrences(s, msk(2026, 3, 6, 10, 0), 3)  # Friday after 9:00
    assert got == [msk(2026, 3, 9, 9, 0), msk(2026, 3, 10, 9, 0), msk(2026, 3, 11, 9, 0)]
    assert all(t.hour == 6 for t in got)  # Moscow is UTC+3 all year


def test_cron_zero_and_seven_are_sunday_as_in_crontab():
    sundays = occurrences(spec(CRON, "0 12 * * 0"), msk(2026, 3, 2), 2)
    assert [t.astimezone(MSK).isoweekday() for t in sundays] == [7, 7]
    assert occurrences(spec(CRON, "0 12 * * 7"), msk(2026, 3, 2), 2) == sundays
    weekend = occurrences(spec(CRON, "0 12 * * 6-7"), msk(2026, 3, 2), 2)
    assert [t.astimezone(MSK).isoweekday() for t in weekend] == [6, 7]
    assert occurrences(spec(CRON, "0 12 * * sat,sun"), msk(2026, 3, 2), 2) == weekend


def test_cron_keeps_local_time_across_dst():
    s = spec(CRON, "0 9 * * *", "Europe/Berlin")
    before, after = occurrences(s, dt.datetime(2026, 3, 27, 12, tzinfo=dt.UTC), 2)
    assert before.astimezone(BERLIN).hour == after.astimezone(BERLIN).hour == 9
    assert (before.hour, after.hour) == (8, 7)  # CET then CEST in UTC


def test_cron_steps_lists_and_macros():
    got = occurrences(spec(CRON, "*/20 9-10 * * *"), msk(2026, 3, 2, 8, 0), 7)
    assert [t.astimezone(MSK).strftime("%H:%M") for t in got] == [
        "09:00", "09:20", "09:40", "10:00", "10:20", "10:40", "09:00"]
    assert occurrences(spec(CRON, "@daily"), msk(2026, 3, 2, 8, 0), 1) == [msk(2026, 3, 3)]
    assert occurrences(spec(CRON, "0 0 1 * *"), msk(2026, 1, 31), 2) == [
        msk(2026, 2, 1), msk(2026, 3, 1)]


def test_cron_missed_fires_collapse_into_one():
    s = spec(CRON, "0 9 * * *")
    due, seq = first_due(s, msk(2026, 3, 2, 12))
    # down from March 3rd to March 10th 12:00: the next one is March 11th, not March 4th
    assert next_due(s, due, seq, msk(2026, 3, 10, 12)) == (msk(2026, 3, 11, 9, 0), 1)


# --- ISO 8601 cycles --------------------------------------------------------------------------

def test_iso_cycle_daily_at_nine_moscow():
    s = spec(CYCLE, "R/2026-01-05T09:00/P1D")
    assert occurrences(s, msk(2026, 3, 2, 10, 0), 2) == [msk(2026, 3, 3, 9), msk(2026, 3, 4, 9)]
    assert first_due(s, msk(2026, 1, 1))[0] == msk(2026, 1, 5, 9)  # not yet started: the start


def test_iso_cycle_with_a_count_stops():
    s = spec(CYCLE, "R3/2026-03-02T09:00/PT1H")
    assert occurrences(s, msk(2026, 3, 1), 10) == [msk(2026, 3, 2, 9), msk(2026, 3, 2, 10),
                                                   msk(2026, 3, 2, 11)]
    assert first_due(s, msk(2026, 3, 2, 11, 30)) is None


def test_iso_cycle_missed_occurrences_count_against_the_repeats():
    s = spec(CYCLE, "R5/2026-03-02T09:00/P1D")
    due, seq = first_due(s, msk(2026, 3, 1))
    assert (due, seq) == (msk(2026, 3, 2, 9), 0)
    # down until March 5th noon: fired once on recovery, then March 6th (#4) is the last
    assert next_due(s, due, seq, msk(2026, 3, 5, 12)) == (msk(2026, 3, 6, 9), 4)
    assert next_due(s, msk(2026, 3, 6, 9), 4, msk(2026, 3, 6, 9)) is None


def test_iso_cycle_with_an_offset_and_months():
    s = spec(CYCLE, "R/2026-01-31T10:00:00+00:00/P1M")
    got = occurrences(s, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 3)
    assert [t.date().isoformat() for t in got] == ["2026-01-31", "2026-02-28", "2026-03-31"]
    assert all(t.hour == 10 for t in got)  # the offset wins over the zone


def test_iso_cycle_without_start_counts_from_activation():
    s = spec(CYCLE, "R2/PT30M")
    now = msk(2026, 3, 2, 12, 0)
    assert occurrences(s, now, 5) == [msk(2026, 3, 2, 12, 30), msk(2026, 3, 2, 13, 0)]


def test_iso_cycle_keeps_wall_clock_across_dst_for_days_not_hours():
    daily = spec(CYCLE, "R/2026-03-27T09:00/P1D", "Europe/Berlin")
    got = occurrences(daily, dt.datetime(2026, 3, 27, tzinfo=dt.UTC), 3)
    assert [t.astimezone(BERLIN).hour for t in got] == [9, 9, 9]
    hourly = spec(CYCLE, "R/2026-03-29T00:00/PT1H", "Europe/Berlin")
    got = occurrences(hourly, dt.datetime(2026, 3, 28, 22, tzinfo=dt.UTC), 4)
    assert [b - a for a, b in zip(got, got[1:], strict=False)] == [dt.timedelta(hours=1)] * 3


# --- dates and durations -----------------------------------------------------------------------

def test_durations_and_dates_of_waiting_timers():
    now = msk(2026, 3, 2, 12, 0)
    assert due_of(spec(DURATION, "P3D"), now, CAL) == now + dt.timedelta(days=3)
    assert due_of(spec(DURATION, "PT90M"), now, CAL) == now + dt.timedelta(minutes=90)
    assert due_of(spec(DATE, "2026-03-10T18:00"), now, CAL) == msk(2026, 3, 10, 18)
    assert due_of(spec(DATE, "2026-03-10T18:00Z"), now, CAL) == dt.datetime(
        2026, 3, 10, 18, tzinfo=dt.UTC)
    business = TimerSpec("T", DURATION, "PT2H", "Europe/Moscow", business_hours=True)
    assert due_of(business, msk(2026, 3, 6, 17, 0), CAL) == msk(2026, 3, 9, 10, 0)


@pytest.mark.parametrize("kind,expression,message", [
    (DURATION, "2 hours", "not an ISO 8601 duration"),
    (DURATION, "PT0S", "is zero"),
    (DATE, "next monday", "not an ISO 8601 date-time"),
    (CYCLE, "R0/PT1H", "repeat count '0'"),
    (CYCLE, "R/2026-01-05T09:00/P0D", "is zero"),
    (CYCLE, "R/2026-01-05T09:00/PT1X", "not an ISO 8601 duration"),
    (CYCLE, "R/P1D/2026-01-05", "an end date is not supported"),
    (CRON, "0 9 * *", "five fields"),
    (CRON, "61 9 * * *", "61"),
    (CRON, "0 9 1 * 1-5", "restricts both the day of month and the day of week"),
    (CRON, "0 9 ? * 1", "is not crontab syntax"),
    (CRON, "0 9 * * 9", "'9' in day of week"),
    (CRON, "0 0 30 2 *", "never fires"),
])
def test_bad_expressions_are_explained(kind, expression, message):
    assert message in (check(spec(kind, expression)) or "")


# --- business calendar -------------------------------------------------------------------------

def test_friday_afternoon_plus_two_working_hours_is_monday_morning():
    assert CAL.add(msk(2026, 3, 6, 17, 0), dt.timedelta(hours=2)) == msk(2026, 3, 9, 10, 0)


@pytest.mark.parametrize("start,hours,expected", [
    ((2026, 3, 2, 10, 0), 2, (2026, 3, 2, 12, 0)),    # inside one day
    ((2026, 3, 2, 16, 0), 2, (2026, 3, 2, 18, 0)),    # ends exactly at closing
    ((2026, 3, 2, 7, 30), 1, (2026, 3, 2, 10, 0)),    # before opening: counts from 9:00
    ((2026, 3, 2, 20, 0), 1, (2026, 3, 3, 10, 0)),    # after closing: the next morning
    ((2026, 3, 7, 11, 0), 2, (2026, 3, 9, 11, 0)),    # Saturday: from Monday 9:00
    ((2026, 3, 2, 10, 0), 18, (2026, 3, 4, 10, 0)),   # two full working days
])
def test_working_hours_arithmetic(start, hours, expected):
    assert CAL.add(msk(*start), dt.timedelta(hours=hours)) == msk(*expected)


def test_holidays_are_skipped_and_extra_workdays_count():
    cal = BusinessCalendar.from_config({"holidays": ["2026-03-09"],
                                        "workdays": ["2026-03-07"]})
    assert cal.add(msk(2026, 3, 6, 17, 0), dt.timedelta(hours=2)) == msk(2026, 3, 7, 10, 0)
    no_saturday = BusinessCalendar.from_config({"holidays": ["2026-03-09"]})
    assert no_saturday.add(msk(2026, 3, 6, 17, 0), dt.timedelta(hours=2)) == msk(
        2026, 3, 10, 10, 0)


def test_working_days_and_weeks():
    assert CAL.working_time("P1D") == dt.timedelta(hours=9)
    assert CAL.add(msk(2026, 3, 3, 11, 0), CAL.working_time("P3D")) == msk(2026, 3, 6, 11, 0)
    assert CAL.add(msk(2026, 3, 3, 11, 0), CAL.working_time("P1W")) == msk(2026, 3, 10, 11, 0)


def test_another_zone_and_hours():
    cal = BusinessCalendar.from_config({"timezone": "Asia/Yekaterinburg", "start": "10:00",
                                        "end": "19:00", "days": [1, 2, 3, 4, 5, 6]})
    ekb = zoneinfo.ZoneInfo("Asia/Yekaterinburg")
    start = dt.datetime(2026, 3, 7, 18, 0, tzinfo=ekb)  # a working Saturday
    assert cal.add(start, dt.timedelta(hours=3)) == dt.datetime(2026, 3, 9, 12, 0, tzinfo=ekb)


@pytest.mark.parametrize("config,message", [
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"days": []}, "days"),
    ({"days": [0, 8]}, "days"),
    ({"start": "18:00", "end": "09:00"}, "end"),
    ({"start": "nine"}, "start"),
    ({"holidays": ["2026-02-30"]}, "holidays"),
    ({"hours": 8}, "unknown business calendar keys: hours"),
])
def test_bad_calendar_configuration_is_explained(config, message):
    with pytest.raises(ValueError, match=message):
        BusinessCalendar.from_config(config)


def test_a_calendar_without_working_time_gives_up():
    cal = BusinessCalendar.from_config({"days": [1], "holidays": [
        (dt.date(2026, 3, 2) + dt.timedelta(weeks=w)).isoformat() for w in range(200)]})
    with pytest.raises(ValueError, match="no working time"):
        cal.add(msk(2026, 3, 2, 10), dt.timedelta(hours=1))
