"""The admin page of timers: schedules with last and next fire, upcoming and failed timers;
admins only."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from crm_models.org import User
from engine.store import Timer, TimerStatus

from ..automation.support import api_as
from .support import make_due


@pytest.fixture()
def demo(db, demo):  # noqa: F811 - the demo, with the admin reading English
    db.execute(update(User).where(User.email == "admin@demo.local").values(locale="en"))
    db.commit()
    return demo


def page(client):
    r = client.get("/admin/timers/")
    return r.status_code, r.get_data(as_text=True)


def section(html, table_id):
    m = re.search(rf'<table class="table" id="{table_id}">(.*?)</table>', html, re.S)
    assert m, f"no table {table_id}"
    return m.group(1)


def test_only_admins_see_the_timers(app, db, client, auth, demo):
    r = client.get("/admin/timers/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    auth.login("manager1@demo.local")
    assert page(client)[0] == 403
    auth.logout()
    auth.login("admin@demo.local")
    status, html = page(client)
    assert status == 200 and "<h1>Timers</h1>" in html
    assert 'href="/admin/timers/"' in client.get("/admin/users").get_data(as_text=True)


def test_the_page_speaks_russian(app, db, client, auth, demo):
    db.execute(update(User).where(User.email == "admin@demo.local").values(locale="ru"))
    db.commit()
    auth.login("admin@demo.local")
    _, html = page(client)
    assert "<h1>Таймеры</h1>" in html and "ещё не было" in section(html, "schedules")


def test_schedules_show_last_and_next_fire(app, db, client, auth, demo, runner):
    auth.login("admin@demo.local")
    _, html = page(client)
    rows = section(html, "schedules")
    assert "stale_deal_followup" in rows and "0 9 * * 1-5" in rows
    assert "Europe/Moscow" in rows and "idle 7+ days" in rows
    assert "never" in rows  # not fired yet
    assert "This process does not fire timers" in html  # TESTING: no embedded scheduler

    # fire it (the occurrence moved to now, under a new key), then look again
    db.execute(update(Timer).where(Timer.kind == "start").values(
        due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), schedule_key=None))
    db.commit()
    assert runner.run_due().fired == 1
    _, html = page(client)
    rows = section(html, "schedules")
    assert "started 0 instances" in rows and "never" not in rows


def test_upcoming_and_failed_timers(app, db, client, auth, demo):
    api = api_as(app, db, "manager1@demo.local")
    r = api.post("/api/v1/deals", json={"title": "Большая поставка", "amount": "3000000"})
    deal_id = r.get_json()["id"]
    auth.login("admin@demo.local")
    _, html = page(client)
    rows = section(html, "upcoming-timers")
    assert "Timer_ContactSLA" in rows and "large_deal_routing" in rows and "PT2H" in rows
    assert f"/deals/{deal_id}" in rows
    assert "failed-timers" not in html

    make_due(db, Timer.instance_id.is_not(None))
    db.execute(update(Timer).where(Timer.instance_id.is_not(None)).values(
        status=TimerStatus.FAILED, attempts=5, note="failed 5 times: boom"))
    db.commit()
    _, html = page(client)
    assert "failed 5 times: boom" in section(html, "failed-timers")
    assert db.scalars(select(Timer).where(Timer.status == TimerStatus.PENDING,
                                          Timer.kind != "start")).all() == []
    assert "No instance is waiting for a timer." in html
