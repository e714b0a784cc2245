"""Sales reports on fixed data: each figure equals the hand calculation in the comments,
and each user gets only the records his rights show."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from crm_models.activity import AuditEvent
from crm_models.entities import Deal, Lead
from crm_models.errors import ValidationFailed
from crm_models.services import reports as rep
from crm_models.services.crm import update_deal
from tests.factories import SYSTEM, actor, make_deal, make_lead

MSK = ZoneInfo("Europe/Moscow")


def today() -> dt.date:
    return dt.datetime.now(MSK).date()


def period() -> rep.ReportFilter:
    return rep.ReportFilter(today() - dt.timedelta(days=40), today())


@pytest.fixture()
def sales(db, org):
    """Deals (pipeline 0; stage index NEW0 PREPARATION1 PREPAYMENT_INVOICE2 EXECUTING3
    FINAL_INVOICE4 WON5):
    A m1 NEW→PREPARATION→EXECUTING (furthest 3); B m1 NEW→WON, 1000 RUB (5);
    C m2 PREPARATION→LOSE (1); D m2 NEW (0); E outsider created WON, 500 RUB (5);
    F m1 created 60 days ago, NEW→LOSE 35 days ago (outside the funnel, lost in period).
    Leads: CALL m1 converted, CALL m1, CALL m2, WEB m2 converted, no source outsider."""
    a = make_deal(db, org.m1, title="A")
    update_deal(db, SYSTEM, a.id, stage="PREPARATION")
    update_deal(db, SYSTEM, a.id, stage="EXECUTING")
    b = make_deal(db, org.m1, title="B", amount="1000")
    update_deal(db, SYSTEM, b.id, stage="WON")
    c = make_deal(db, org.m2, title="C", stage="PREPARATION")
    update_deal(db, SYSTEM, c.id, stage="LOSE")
    make_deal(db, org.m2, title="D")
    make_deal(db, org.outsider, title="E", stage="WON", amount="500")
    f = make_deal(db, org.m1, title="F")
    update_deal(db, SYSTEM, f.id, stage="LOSE")
    now = dt.datetime.now(dt.UTC)
    db.execute(update(Deal).where(Deal.id == f.id).values(created_at=now - dt.timedelta(days=60)))
    db.execute(update(AuditEvent).where(AuditEvent.entity_type == "deal",
                                        AuditEvent.entity_id == f.id)
               .values(at=now - dt.timedelta(days=35)))
    for user, source, converted in ((org.m1, "CALL", True), (org.m1, "CALL", False),
                                    (org.m2, "CALL", False), (org.m2, "WEB", True),
                                    (org.outsider, "", False)):
        lead = make_lead(db, user, source=source)
        if converted:
            db.execute(update(Lead).where(Lead.id == lead.id).values(status="CONVERTED"))
    db.commit()
    return {"f_month": (now - dt.timedelta(days=35)).astimezone(MSK).strftime("%Y-%m"),
            "month": now.astimezone(MSK).strftime("%Y-%m")}


def _funnel(db, who, flt=None):
    f = rep.funnel(db, who, flt or period())
    return [(s.code, s.reached, s.conversion) for s in f.stages], f


def test_funnel_by_hand(db, org, sales):
    rows, f = _funnel(db, SYSTEM)
    assert f.deals == 5 and f.lost == 1
    assert rows == [("NEW", 5, None), ("PREPARATION", 4, 80.0),
                    ("PREPAYMENT_INVOICE", 3, 75.0), ("EXECUTING", 3, 100.0),
                    ("FINAL_INVOICE", 2, 66.7), ("WON", 2, 100.0)]
    assert {s.code: s.now for s in f.stages} == {"NEW": 1, "PREPARATION": 0,
                                                 "PREPAYMENT_INVOICE": 0, "EXECUTING": 1,
                                                 "FINAL_INVOICE": 0, "WON": 2}
    # m1 ("own"): A and B only
    rows, _f = _funnel(db, actor(db, org.m1))
    assert [r[1] for r in rows] == [2, 2, 2, 2, 1, 1]
    # the Support department: E only
    support = rep.ReportFilter(period().start, period().end, department_id=org.support_id)
    assert [r[1] for r in _funnel(db, SYSTEM, support)[0]] == [1] * 6
    # a period before everything: nothing
    old = rep.ReportFilter(today() - dt.timedelta(days=400), today() - dt.timedelta(days=300))
    rows, f = _funnel(db, SYSTEM, old)
    assert f.deals == 0 and [r[1] for r in rows] == [0] * 6 and rows[1][2] is None


def test_lead_conversion_by_hand(db, org, sales):
    rows = rep.lead_conversion(db, SYSTEM, period())
    assert [(r.source, r.leads, r.converted, r.rate) for r in rows] == [
        ("CALL", 3, 1, 33.3), ("", 1, 0, 0.0), ("WEB", 1, 1, 100.0), ("*", 5, 2, 40.0)]
    rows = rep.lead_conversion(db, actor(db, org.m1), period())
    assert [(r.source, r.leads, r.converted) for r in rows] == [("CALL", 2, 1), ("*", 2, 1)]


def test_won_lost_by_hand(db, org, sales):
    got = rep.won_lost(db, SYSTEM, period())
    assert [(r.label, r.won, r.lost) for r in got.by_manager] == [
        ("Manager One", 1, 1), ("Outsider", 1, 0), ("Manager Two", 0, 1)]
    assert got.total.won == 2 and got.total.lost == 2
    assert got.total.won_amount == {"RUB": Decimal("1500.00")}
    months = {r.key: (r.won, r.lost) for r in got.by_month}
    assert months == {sales["f_month"]: (0, 1), sales["month"]: (2, 1)}
    mine = rep.won_lost(db, actor(db, org.m1), period())
    assert [(r.label, r.won, r.lost) for r in mine.by_manager] == [("Manager One", 1, 1)]
    # the head of Sales sees Sales (m1, m2), not Support
    head = rep.won_lost(db, actor(db, org.head), period())
    assert {r.label for r in head.by_manager} == {"Manager One", "Manager Two"}
    # only the last 30 days: F (lost 35 days ago) is out
    recent = rep.won_lost(db, SYSTEM, rep.ReportFilter(today() - dt.timedelta(days=30),
                                                       today()))
    assert (recent.total.won, recent.total.lost) == (2, 1)


def test_filter_errors_name_the_parameter(db, org):
    with pytest.raises(ValidationFailed) as exc:
        rep.parse_filter(db, {"from": "2030-13-01", "pipeline_id": "x",
                              "department_id": "424242"}, today=dt.date(2030, 1, 1))
    assert set(exc.value.fields) == {"from", "pipeline_id", "department_id"}
    with pytest.raises(ValidationFailed) as exc:
        rep.parse_filter(db, {"from": "2030-02-01", "to": "2030-01-01"},
                         today=dt.date(2030, 1, 1))
    assert set(exc.value.fields) == {"to"}
    flt = rep.parse_filter(db, {}, today=dt.date(2030, 1, 31))
    assert (flt.start, flt.end) == (dt.date(2030, 1, 2), dt.date(2030, 1, 31))
    assert db.scalars(select(Deal)).first() is None
