"""Backtest of a draft on the recorded events: the report's counts equal a hand calculation,
nothing is written, a bad draft names the element at fault."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from automation.backtest import BacktestError, backtest
from automation.models import Notification, RoundRobinCursor
from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.entities import Deal
from crm_models.permissions import actor_for
from crm_models.services.crm import create_deal
from engine.store import ProcessHistory, ProcessInstance, ProcessTask

LARGE = (Path(__file__).resolve().parents[2] / "processes" / "large_deal_routing.bpmn"
         ).read_text(encoding="utf-8")


def draft(threshold="400000", condition=None):
    xml = LARGE.replace('name="threshold" type="decimal" value="1000000"',
                        f'name="threshold" type="decimal" value="{threshold}"')
    if condition is not None:
        start = xml.index('<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">rose_above')
        end = xml.index("</bpmn:conditionExpression>", start)
        xml = (xml[:start] + '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">'
               + condition + xml[end:])
    return xml


@pytest.fixture()
def history(db, demo):
    """The demo's own events moved out of the period (60 days back), then manager 1 creates
    3 deals of 2,500,000 (routed to the corporate manager), 4 of 500,000 and 5 of 100,000
    (left with him), each routed as it is committed."""
    db.execute(update(OutboxEvent).values(
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=60)))
    db.commit()
    m1 = actor_for(db, demo.m1)
    ids = {}
    for amount, n in (("2500000", 3), ("500000", 4), ("100000", 5)):
        for i in range(n):
            deal = create_deal(db, m1, title=f"Deal {amount} #{i}", amount=amount)
            db.commit()
            ids.setdefault(amount, []).append(deal.id)
    db.rollback()
    return ids


def counts(db):
    return {m.__tablename__: db.scalar(select(func.count()).select_from(m))
            for m in (OutboxEvent, AuditEvent, ProcessInstance, ProcessTask, ProcessHistory,
                      Notification, RoundRobinCursor, Deal)}


def test_the_live_routing_is_what_the_history_holds(db, demo, history):
    db.rollback()
    got = {d.id: d.responsible_id for d in db.scalars(select(Deal).where(
        Deal.id.in_([i for v in history.values() for i in v])))}
    assert [got[i] for i in history["2500000"]] == [demo.corporate.id] * 3
    assert {got[i] for i in history["500000"] + history["100000"]} == {demo.m1.id}


def test_a_lower_threshold_moves_the_middle_deals_and_nothing_else(app, db, demo, history):
    report = backtest(db, app.extensions["engine"], draft("400000"), days=30)
    assert report.errors == []
    out = report.to_json()
    # 12 deal.created events; the routing's own deal.updated events do not start it again
    assert out["events"] == 12 and out["by_entity"] == {"deal": {"events": 12, "changed": 4}}
    [group] = out["groups"]
    assert group["count"] == 4 and group["of"] == 12 and group["entity_type"] == "deal"
    assert group["actual"] == {"kind": "user", "users": [
        {"id": demo.m1.id, "full_name": demo.m1.full_name}]}
    assert group["draft"] == {"kind": "user", "users": [
        {"id": demo.corporate.id, "full_name": demo.corporate.full_name}]}
    assert sorted(e["entity_id"] for e in group["examples"]) == history["500000"]


def test_the_deployed_drawing_itself_changes_nothing(app, db, demo, history):
    report = backtest(db, app.extensions["engine"], LARGE, days=30)
    assert report.to_json()["events"] == 12 and report.to_json()["changed"] == 0


def test_a_higher_threshold_keeps_the_large_deals_with_their_manager(app, db, demo, history):
    out = backtest(db, app.extensions["engine"], draft("3000000"), days=30,
                   examples=2).to_json()
    [group] = out["groups"]
    assert group["count"] == 3 and len(group["examples"]) == 2
    assert group["actual"]["users"][0]["id"] == demo.corporate.id
    assert group["draft"]["users"][0]["id"] == demo.m1.id


def test_a_backtest_writes_nothing(app, db, demo, history):
    before = counts(db)
    responsible = dict(db.execute(select(Deal.id, Deal.responsible_id)).all())
    backtest(db, app.extensions["engine"], draft("400000"), days=30)
    assert not db.new and not db.dirty and not db.deleted
    db.commit()  # whatever the session held would be written now
    assert counts(db) == before
    assert dict(db.execute(select(Deal.id, Deal.responsible_id)).all()) == responsible


def test_a_drawing_that_does_not_compile_names_its_element(app, db, demo, history):
    report = backtest(db, app.extensions["engine"], draft(condition="deal.amount &gt;"),
                      days=30)
    assert report.errors and report.errors[0].element_id == "Flow_Large"
    assert report.to_json()["events"] == 0


def test_a_condition_failing_on_the_history_names_its_element(app, db, demo, history):
    report = backtest(db, app.extensions["engine"],
                      draft(condition="deal.no_such_field &gt; threshold"), days=30)
    out = report.to_json()
    assert out["errors"] == [] and out["changed"] == 12
    # two groups (by where the deals actually went: 9 stayed, 3 to the corporate manager),
    # every one an incident at the flow whose condition fails, with the sandbox's message
    assert sorted(g["count"] for g in out["groups"]) == [3, 9]
    for g in out["groups"]:
        assert g["draft"]["kind"] == "incident" and g["draft"]["element_id"] == "Flow_Large"
        assert "no_such_field" in g["draft"]["message"], g["draft"]


@pytest.mark.parametrize("xml, runs", [
    (draft("400000"), 7),     # 5 deals of 100,000 skipped by the pre-filter
    (draft("3000000"), 0),    # nothing can rise above it: every start skipped
    (LARGE, 3),
    (draft(condition="deal.no_such_field &gt; threshold"), 12),  # a failing condition: run
])
def test_the_pre_filtered_backtest_reports_what_the_full_runs_report(app, db, demo, history,
                                                                    monkeypatch, xml, runs):
    """The engine's start pre-filter spares the workflow runs of the deals the draft's
    gateway cannot route; the report is the one running every event gives."""
    import automation.backtest as bt

    engine = app.extensions["engine"]
    built = []

    class Counting(bt.BpmnWorkflow):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(bt, "BpmnWorkflow", Counting)

    now = dt.datetime.now(dt.UTC)

    def report():
        out = backtest(db, engine, xml, days=30, now=now).to_json()
        out.pop("seconds")
        return out

    monkeypatch.setattr(engine, "prefilter", False)
    full = report()
    assert len(built) == 12
    built.clear()
    monkeypatch.setattr(engine, "prefilter", True)
    assert report() == full
    assert len(built) == runs


@pytest.mark.parametrize("days", [0, -1, 367, "7", True, 1.5])
def test_a_bad_period_names_the_field(app, db, demo, days):
    with pytest.raises(BacktestError) as exc:
        backtest(db, app.extensions["engine"], LARGE, days=days)
    assert exc.value.field == "days"


# --- the API and the page ----------------------------------------------------------------------

def test_the_api_runs_a_body_or_the_saved_draft(app, db, demo, history):
    from automation.drafts import save_draft

    from .support import api_as

    admin = api_as(app, db, "admin@demo.local")
    r = admin.post("/api/v1/editor/backtest", json={"bpmn_xml": draft("400000"), "days": 30})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["source"] == "body" and body["changed"] == 4 and body["events"] == 12
    ex = body["groups"][0]["examples"][0]
    assert ex["url"] == f"/deals/{ex['entity_id']}" and ex["title"].startswith("Deal 500000")
    # no draft yet: the newest version, which changes nothing
    r = admin.post("/api/v1/editor/backtest", json={"key": "large_deal_routing"})
    assert r.get_json()["source"] == "v1" and r.get_json()["changed"] == 0
    save_draft(db, actor_for(db, demo.admin), bpmn_xml=draft("3000000"))
    db.commit()
    r = admin.post("/api/v1/editor/backtest", json={"key": "large_deal_routing", "days": 7})
    assert r.get_json()["source"] == "draft" and r.get_json()["changed"] == 3


def test_the_api_refuses_bad_input_and_non_designers(app, db, demo, history):
    from .support import api_as

    admin = api_as(app, db, "admin@demo.local")
    for body, field in (({"bpmn_xml": LARGE, "days": 0}, "days"),
                        ({"bpmn_xml": LARGE, "days": "x"}, "days"),
                        ({"bpmn_xml": LARGE, "key": "large_deal_routing"}, "key"),
                        ({"key": 5}, "key"), ({"bpmn_xml": 5}, "bpmn_xml"),
                        ({"bpmn_xml": LARGE, "extra": 1}, "extra")):
        r = admin.post("/api/v1/editor/backtest", json=body)
        assert r.status_code == 422 and field in r.get_json()["error"]["fields"], (body, r.json)
    r = admin.post("/api/v1/editor/backtest", json={"key": "nothing_here"})
    assert r.status_code == 404
    r = admin.post("/api/v1/editor/backtest", json={"bpmn_xml": draft(condition="deal.amount &gt;")})
    assert r.status_code == 200 and r.get_json()["errors"][0]["element_id"] == "Flow_Large"
    r = api_as(app, db, "manager1@demo.local").post("/api/v1/editor/backtest",
                                                    json={"bpmn_xml": LARGE})
    assert r.status_code == 403


def test_the_page_from_the_editor_shows_the_groups_in_russian(app, db, demo, history, client,
                                                              auth):
    from automation.drafts import save_draft

    save_draft(db, actor_for(db, demo.admin), bpmn_xml=draft("400000"))
    db.commit()
    auth.login("admin@demo.local")
    edit = client.get("/processes/large_deal_routing/edit").get_data(as_text=True)
    assert 'href="/processes/large_deal_routing/backtest"' in edit
    page = client.get("/processes/large_deal_routing/backtest")
    assert page.status_code == 200 and "backtest-groups" not in page.get_data(as_text=True)
    html = client.get("/processes/large_deal_routing/backtest?days=30").get_data(as_text=True)
    assert 'data-count="4"' in html and "4 из 12" in html
    assert demo.corporate.full_name in html and demo.m1.full_name in html
    assert "Проверить на истории" in html
    bad = client.get("/processes/large_deal_routing/backtest?days=0").get_data(as_text=True)
    assert 'id="backtest-errors"' in bad and "366" in bad
    auth.login("manager1@demo.local")
    assert client.get("/processes/large_deal_routing/backtest?days=30").status_code == 403
