"""The activity index: counts per employee, department and bucket; who sees whose numbers."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from crm_models.activity import AuditEvent
from crm_models.errors import ValidationFailed
from crm_models.permissions import system_actor
from crm_models.services import add_comment, change_deal_stage, create_deal, update_deal
from crm_models.services.activity_index import activity_index, bucket_starts

from ..factories import actor

NOW = dt.datetime(2026, 3, 18, 12, 0, tzinfo=dt.UTC)  # a Wednesday


@pytest.fixture()
def work(db, org):
    """Manager One: 4 actions today; Manager Two: 2; Corporate: 1; the outsider: 1; a process: 1.
    Then everything is dated to ``NOW``."""
    m1 = actor(db, org.m1)
    deal = create_deal(db, m1, title="One")
    update_deal(db, m1, deal.id, amount="10")
    change_deal_stage(db, m1, deal.id, "PREPARATION")  # an update and a stage move
    m2 = actor(db, org.m2)
    other = create_deal(db, m2, title="Two")
    add_comment(db, m2, entity_type="deal", entity_id=other.id, text="note")
    create_deal(db, actor(db, org.corporate), title="Three")
    create_deal(db, actor(db, org.outsider), title="Four")
    update_deal(db, system_actor("process x v1, instance 1"), deal.id, amount="20")
    db.execute(update(AuditEvent).values(at=NOW))
    db.commit()


def row(report, user):
    return next((r for r in report.employees if r.key == user.id), None)


def test_a_manager_with_own_sees_only_their_own_numbers(db, org, work):
    report = activity_index(db, actor(db, org.m1), now=NOW)
    assert [r.key for r in report.employees] == [org.m1.id]
    assert row(report, org.m1).counts[-1] == 4 and row(report, org.m1).total == 4
    assert report.total.total == 4 and not report.company_wide
    assert [(d.key, d.total) for d in report.departments] == [(org.sales_id, 4)]


def test_the_head_sees_the_department_and_its_sub_departments(db, org, work):
    report = activity_index(db, actor(db, org.head), now=NOW)
    totals = {r.key: r.total for r in report.employees}
    assert totals[org.m1.id] == 4 and totals[org.m2.id] == 2 and totals[org.corporate.id] == 1
    assert org.outsider.id not in totals
    assert totals[org.head.id] == 0  # visible, and idle
    deps = {d.key: d.total for d in report.departments}
    assert deps == {org.sales_id: 6, org.corporate_id: 1}
    assert report.total.total == 7 and not report.company_wide


def test_an_admin_sees_the_company_total_processes_excluded(db, org, work):
    report = activity_index(db, actor(db, org.admin), now=NOW)
    assert report.company_wide
    assert report.total.total == 8  # 4 + 2 + 1 + 1; the process's change is not counted
    assert [r.key for r in report.employees][:2] == [org.m1.id, org.m2.id]  # most active first
    assert {d.key: d.total for d in report.departments}[org.support_id] == 1


@pytest.mark.parametrize(("period", "n", "first"), [
    ("day", 14, dt.date(2026, 3, 5)), ("week", 12, dt.date(2025, 12, 29)),
    ("month", 12, dt.date(2025, 4, 1))])
def test_periods(db, org, work, period, n, first):
    report = activity_index(db, actor(db, org.admin), period=period, now=NOW)
    assert len(report.buckets) == n and report.buckets[0] == first
    assert report.total.counts[-1] == 8 and sum(report.total.counts[:-1]) == 0


def test_older_actions_fall_in_their_bucket_and_outside_the_window_not_at_all(db, org, work):
    db.execute(update(AuditEvent).where(AuditEvent.actor_user_id == org.m2.id)
               .values(at=NOW - dt.timedelta(days=8)))
    db.execute(update(AuditEvent).where(AuditEvent.actor_user_id == org.corporate.id)
               .values(at=NOW - dt.timedelta(days=400)))
    db.commit()
    by_day = activity_index(db, actor(db, org.admin), period="day", now=NOW)
    assert by_day.total.counts[-1] == 5 and by_day.total.counts[-9] == 2
    by_week = activity_index(db, actor(db, org.admin), period="week", now=NOW)
    assert by_week.total.counts[-2:] == [2, 5]
    assert activity_index(db, actor(db, org.admin), period="month", now=NOW).total.total == 7


def test_days_are_the_actors_calendar_days(db, org):
    create_deal(db, actor(db, org.m1), title="Late")
    # 22:30 UTC is already the next day in Moscow (UTC+3).
    db.execute(update(AuditEvent).values(at=dt.datetime(2026, 3, 17, 22, 30, tzinfo=dt.UTC)))
    db.commit()
    report = activity_index(db, actor(db, org.m1), now=NOW)
    assert report.buckets[-1] == dt.date(2026, 3, 18) and report.total.counts[-1] == 1


def test_bad_period(db, org):
    with pytest.raises(ValidationFailed) as err:
        activity_index(db, actor(db, org.m1), period="year")
    assert "period" in err.value.fields


def test_bucket_starts_across_a_new_year():
    assert bucket_starts("month", dt.date(2026, 1, 15))[-2:] == [dt.date(2025, 12, 1),
                                                                  dt.date(2026, 1, 1)]


def test_the_page_shows_charts_and_tables_with_only_allowed_numbers(app, db, org, work, pages):
    html = pages.as_("m1@test.local").get("/activity-index").get_data(as_text=True)
    assert "Manager One" in html and "Manager Two" not in html
    assert "data-chart=" in html and 'class="table index-table"' in html
    html = pages.as_("head@test.local").get("/activity-index?period=week").get_data(as_text=True)
    assert "Manager Two" in html and "Outsider" not in html
    assert pages.as_("head@test.local").get("/activity-index?period=x").status_code == 200
