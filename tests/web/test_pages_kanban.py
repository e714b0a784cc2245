"""The deal kanban: columns with counts and sums, and the stage-change endpoint behind it."""
from __future__ import annotations

import re

from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.entities import Deal
from tests.factories import make_deal

from .pages_support import Browser, counts, fresh, set_locale, text


def column(html: str, stage_name: str) -> str:
    """The HTML of one kanban column, found by its heading."""
    m = re.search(rf'<section class="kanban-col"[^>]*aria-label="{re.escape(stage_name)}">'
                  r"(.*?)</section>", html, re.S)
    assert m, stage_name
    return m.group(1)


def test_kanban_has_a_column_per_stage_with_counts_and_sums(app, db, org, client, auth):
    make_deal(db, org.m1, title="Alpha", amount="2500000", stage="NEW")
    make_deal(db, org.m1, title="Beta", amount="500000.50", stage="NEW")
    make_deal(db, org.m1, title="Gamma", amount="100", currency="USD", stage="WON")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get("/deals/kanban"))
    assert html.count('class="kanban-col"') == 7
    new = column(html, "Новая")
    assert '<span class="kanban-count" title="Сделки">2</span>' in new
    assert "3\xa0000\xa0000,50\xa0₽" in new and "Alpha" in new and "Beta" in new
    won = column(html, "Сделка успешна")
    assert ">1</span>" in won and "100,00\xa0$" in won
    assert '<span class="kanban-count" title="Сделки">0</span>' in column(html, "В работе")
    # every card has a plain form fallback with a stage select
    assert 'class="stage-fallback"' in new and 'name="stage"' in new
    set_locale(db, org.m1, "en")
    html = text(b.get("/deals/kanban"))
    assert "Deal won" in html and "Kanban" in html


def test_kanban_search_and_responsible_filter(app, db, org, client, auth):
    make_deal(db, org.head, title="Head deal", stage="NEW")
    make_deal(db, org.m1, title="M1 deal", stage="NEW")
    db.commit()
    b = Browser(client, auth).login(org.head)
    html = text(b.get("/deals/kanban?q=m1"))
    assert "M1 deal" in html and "Head deal" not in html
    html = text(b.get(f"/deals/kanban?responsible_id={org.head.id}"))
    assert "Head deal" in html and "M1 deal" not in html
    assert '<span class="kanban-count" title="Сделки">1</span>' in column(html, "Новая")


def test_stage_change_by_drag_and_drop_json(app, db, org, client, auth):
    deal = make_deal(db, org.m1, title="Move me", stage="NEW")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    r = client.post(f"/deals/{deal.id}/stage", data={"stage": "EXECUTING"},
                    headers={"X-CSRFToken": b.token(), "Accept": "application/json"})
    assert r.status_code == 200
    assert r.get_json() == {"ok": True, "deal_id": deal.id, "stage": "EXECUTING",
                            "stage_name": "В работе"}
    assert fresh(db).get(Deal, deal.id).stage.code == "EXECUTING"
    event = db.scalars(select(OutboxEvent).where(
        OutboxEvent.event_type == "deal.stage_changed")).one()
    assert event.entity_id == deal.id
    assert event.payload["from"] == "NEW" and event.payload["to"] == "EXECUTING"
    assert event.actor_user_id == org.m1.id


def test_stage_change_errors_are_json_for_the_script(app, db, org, client, auth):
    deal = make_deal(db, org.m1, stage="NEW")
    other = make_deal(db, org.m2, stage="NEW")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    headers = {"X-CSRFToken": b.token(), "Accept": "application/json"}
    before = counts(db)
    r = client.post(f"/deals/{deal.id}/stage", data={"stage": "NOPE"}, headers=headers)
    assert r.status_code == 422
    assert r.get_json()["error"]["code"] == "validation_failed"
    assert "NOPE" in r.get_json()["error"]["message"]
    r = client.post(f"/deals/{deal.id}/stage", data={}, headers=headers)
    assert r.status_code == 422
    r = client.post(f"/deals/{other.id}/stage", data={"stage": "WON"}, headers=headers)
    assert r.status_code == 404
    r = client.post(f"/deals/{deal.id}/stage", data={"stage": "WON"},
                    headers={"Accept": "application/json"})
    assert r.status_code == 400  # no CSRF header
    assert counts(db) == before
    assert fresh(db).get(type(other), other.id).stage.code == "NEW"


def test_stage_change_without_javascript_redirects_back(app, db, org, client, auth):
    deal = make_deal(db, org.m1, title="Plain", stage="NEW")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    r = b.post(f"/deals/{deal.id}/stage", {"stage": "WON", "next": "/deals/kanban?pipeline=0"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/deals/kanban?pipeline=0")
    html = text(b.get("/deals/kanban"))
    assert "«Plain» перемещена на стадию «Сделка успешна»" in html
    assert "Plain" in column(html, "Сделка успешна")
    # a foreign "next" is ignored
    r = b.post(f"/deals/{deal.id}/stage", {"stage": "NEW", "next": "//evil.example/x"})
    assert r.headers["Location"].endswith(f"/deals/{deal.id}")
    r = b.post(f"/deals/{deal.id}/stage", {"stage": "NOPE"})
    assert r.status_code == 422 and "NOPE" in text(r)


def test_stage_change_from_htmx_returns_the_select(app, db, org, client, auth):
    deal = make_deal(db, org.m1, stage="NEW")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    r = client.post(f"/deals/{deal.id}/stage", data={"stage": "PREPARATION"},
                    headers={"X-CSRFToken": b.token(), "HX-Request": "true"})
    html = text(r)
    assert r.status_code == 200 and html.lstrip().startswith('<form method="post"')
    assert '<option value="PREPARATION" selected>' in html and "Сохранено" in html
    assert fresh(db).get(Deal, deal.id).stage.code == "PREPARATION"
