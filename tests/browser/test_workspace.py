"""The managers' workspace in Chromium: inbox, the live bell, conversion, feed, kanban drag."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select, update

from automation.models import Notification
from crm_models.activity import OutboxEvent
from crm_models.entities import Deal, Lead
from engine.store import ProcessInstance, ProcessTask

from ..automation.conftest import demo, engine  # noqa: F401  (fixtures)
from ..factories import make_deal
from ..workspace.support import task_process
from .conftest import login

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _quick(page):
    page.set_default_timeout(10000)  # a failure shows in seconds, not half a minute


def fresh(db, stmt):
    db.rollback()  # see what the server committed…
    db.expire_all()  # … even when no transaction was open (then rollback expires nothing)
    return db.scalars(stmt).all()


def test_inbox_claim_then_complete_with_a_decision(page, app, db, org, engine):  # noqa: F811
    engine.deploy(db, task_process(assignment="role", assignee="manager", due="PT1H"))
    db.commit()
    make_deal(db, org.m1, title="Станки для Вектора")
    db.commit()
    [task] = fresh(db, select(ProcessTask))
    db.execute(update(ProcessTask).values(due_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    db.commit()
    login(page, "m2@test.local")
    page.goto("/inbox")
    card = page.locator(f"#task-{task.id}")
    assert "is-overdue" in card.get_attribute("class")
    assert "is-offered" in card.get_attribute("class")
    card.get_by_role("button", name="Взять").click()
    page.wait_for_url("**/inbox")
    card = page.locator(f"#my-tasks #task-{task.id}")
    card.get_by_role("button", name="Approve").click()  # the note is required
    assert card.locator('.field-error[data-field="note"]').is_visible()
    card = page.locator(f"#task-{task.id}")
    card.locator('input[name="note"]').fill("Клиент ждёт КП")
    card.get_by_role("button", name="Approve").click()
    page.wait_for_url("**/inbox")
    assert page.locator(f"#task-{task.id}").count() == 0
    [task] = fresh(db, select(ProcessTask))
    assert task.status == "completed" and task.result["decision"] == "approve"
    assert fresh(db, select(ProcessInstance.status)) == ["completed"]
    assert page.console_errors == []


def test_more_tasks_appends_the_next_page_in_place(page, app, db, org):
    from web.workspace.inbox import PAGE

    from ..factories import make_inbox_tasks

    due = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    rows = make_inbox_tasks(db, [{"priority": 2, "due_at": due + dt.timedelta(minutes=n),
                                  "assignee_id": org.m1.id} for n in range(PAGE + 4)])
    db.commit()
    login(page, "m1@test.local")
    page.goto("/inbox")
    cards = page.locator("#my-tasks article.task-card")
    assert cards.count() == PAGE
    page.locator("#more-mine a").click()  # htmx: the cards land where the button was
    page.locator("#more-mine").wait_for(state="detached")  # the last page has no button
    assert cards.count() == PAGE + 4
    assert page.url.endswith("/inbox")  # no navigation
    got = [int(i) for i in cards.evaluate_all("els => els.map(e => e.dataset.taskId)")]
    assert got == [t.id for t in rows]
    assert page.console_errors == []


def test_the_bell_counts_new_tasks_without_a_reload(page, app, db, org, engine):  # noqa: F811
    engine.deploy(db, task_process())
    db.commit()
    login(page, "m1@test.local")
    page.goto("/")
    count = page.locator("#bell .bell-count")
    assert count.is_hidden()
    make_deal(db, org.m1)
    make_deal(db, org.m1)
    db.commit()  # routed now: two tasks for Manager One
    page.wait_for_function(
        "() => document.querySelector('#bell .bell-count').dataset.unread === '2'", timeout=15000)
    assert count.inner_text() == "2"
    page.locator("#bell").click()
    page.wait_for_url("**/notifications")
    assert page.locator(".notification.is-unread").count() == 2
    page.get_by_role("button", name="Отметить все прочитанными").click()
    page.wait_for_url("**/notifications")
    assert page.locator("#bell .bell-count").is_hidden()


def test_lead_conversion_with_preview_routes_the_new_deal(page, app, db, demo):  # noqa: F811
    lead = db.scalars(select(Lead).where(Lead.title == "E-mail: запрос КП")).one()
    login(page, "head@demo.local")
    page.goto(f"/leads/{lead.id}")
    page.get_by_role("link", name="Конвертировать").click()
    page.wait_for_url(f"**/leads/{lead.id}/convert")
    preview = page.content()
    assert "ООО «Бета»" in preview and "Соколов" in preview
    page.locator("form button[type=submit].btn-primary").last.click()
    page.wait_for_url("**/deals/*")
    [deal] = fresh(db, select(Deal).where(Deal.lead_id == lead.id))
    assert page.url.endswith(f"/deals/{deal.id}")
    assert deal.responsible_id == demo.corporate.id  # the large-deal rule routed it
    timeline = page.locator("#timeline").inner_text()
    assert "«Маршрутизация крупных сделок», версия 1" in timeline
    assert "Ольга Корпоративная" in timeline
    assert page.console_errors == []


def test_feed_like_and_comment_with_a_mention(page, app, db, org):
    deal = make_deal(db, org.m1, title="Лента")
    db.commit()
    login(page, "m1@test.local")
    page.goto("/feed")
    item = page.locator(".feed-item").first
    assert "Лента" in item.inner_text()
    item.locator("button.like").click()
    page.wait_for_function("() => document.querySelector('.feed-item .like-count').textContent === '1'")
    item = page.locator(".feed-item").first
    assert item.locator("button.like").get_attribute("aria-pressed") == "true"
    assert not item.locator("textarea[name=text]").is_visible()  # no box under every event
    item.locator("details.feed-reply > summary").click()
    item.locator("textarea[name=text]").fill("@Head of Sales посмотрите")
    item.get_by_role("button", name="Отправить").click()
    page.locator(".feed-item mark.mention").first.wait_for()
    assert "посмотрите" in page.locator(".feed-item").first.inner_text()
    notes = fresh(db, select(Notification.kind).where(Notification.user_id == org.head.id))
    assert notes == ["mention"]
    assert deal.id
    assert page.console_errors == []


def test_kanban_drag_moves_the_deal_and_emits_stage_changed(page, app, db, org):
    deal = make_deal(db, org.m1, title="Перетащи меня")
    db.commit()
    login(page, "m1@test.local")
    page.goto("/deals/kanban")
    card = page.locator(f'.kanban-card[data-deal-id="{deal.id}"]')
    assert card.get_attribute("data-stage") == "NEW"
    card.drag_to(page.locator('.kanban-cards[data-drop-stage="PREPARATION"]'))
    moved = page.locator(f'.kanban-cards[data-drop-stage="PREPARATION"] '
                         f'.kanban-card[data-deal-id="{deal.id}"]')
    moved.wait_for()
    deadline = time.monotonic() + 10
    events: list = []
    while time.monotonic() < deadline and not events:
        events = fresh(db, select(OutboxEvent).where(
            OutboxEvent.event_type == "deal.stage_changed", OutboxEvent.entity_id == deal.id))
        time.sleep(0.1)
    assert [(e.payload["from"], e.payload["to"]) for e in events] == [("NEW", "PREPARATION")]
    assert fresh(db, select(Deal.stage_id).where(Deal.id == deal.id)) != []
    assert page.console_errors == []
