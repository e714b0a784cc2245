"""The start page is a manager's day: overdue and today's work, deals by stage, recent events."""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from sqlalchemy import select, update

from crm_models.services import add_activity
from engine.store import ProcessTask
from tests.factories import SYSTEM, make_deal


def section(html: str, name: str) -> str:
    return html.split(f'id="{name}"', 1)[1].split("</section>", 1)[0]


def test_the_start_page_is_a_managers_day(app, db, org, pages):
    m1 = org.m1
    deal = make_deal(db, m1, title="Станки для завода", amount="100000")
    make_deal(db, m1, title="Вторая", amount="50000")
    make_deal(db, org.m2, title="Чужая", amount="999")
    now = dt.datetime.now(dt.UTC)
    tz = zoneinfo.ZoneInfo(m1.timezone)
    midnight = (now.astimezone(tz) + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                                    microsecond=0)
    for subject, due in (("Позвонить вчера", now - dt.timedelta(days=1)),
                         ("Встреча до полуночи", midnight - dt.timedelta(seconds=30)),
                         ("Послезавтра", midnight + dt.timedelta(days=1))):
        add_activity(db, SYSTEM, entity_type="deal", entity_id=deal.id, type="call",
                     subject=subject, due_at=due.isoformat(), responsible_id=m1.id)
    add_activity(db, SYSTEM, entity_type="deal", entity_id=deal.id, type="call",
                 subject="Чужой звонок", due_at=now.isoformat(), responsible_id=org.m2.id)
    db.commit()
    html = pages.as_("m1@test.local").get("/").get_data(as_text=True)
    overdue, today = section(html, "overdue"), section(html, "today")
    assert "Позвонить вчера" in overdue and "Встреча до полуночи" not in overdue
    assert "Встреча до полуночи" in today and "Позвонить вчера" not in today
    assert "Послезавтра" not in html and "Чужой звонок" not in html
    assert f'href="/deals/{deal.id}#activities"' in overdue and "Звонок" in overdue
    deals = section(html, "my-deals")
    assert re.search(r'Новая</span></a></td>\s*<td class="num">2</td>\s*<td class="num">'
                     r'150\xa0000,00\xa0₽', deals), deals
    assert "stage=NEW" in deals and f"responsible_id={m1.id}" in deals
    recent = section(html, "recent")
    assert "Станки для завода" in recent and "Чужая" not in recent
    assert "class=\"tile" not in html  # no longer four counters


def test_an_overdue_process_task_is_on_the_day_of_its_holder(app, db, demo, pages):
    pages.post("manager1@demo.local", "/deals/new", {
        "title": "Крупная", "amount": "5000000", "currency": "RUB",
        "responsible_id": str(demo.m1.id)})
    db.rollback()
    task = db.scalars(select(ProcessTask).where(ProcessTask.assignee_id == demo.corporate.id)
                      ).one()
    db.execute(update(ProcessTask).where(ProcessTask.id == task.id).values(
        due_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)))
    db.commit()
    html = pages.as_("corporate@demo.local").get("/").get_data(as_text=True)
    overdue = section(html, "overdue")
    assert f'href="/inbox/tasks/{task.id}"' in overdue and task.name in overdue
    assert "Крупная" in overdue  # the task's record
    assert "Просрочено" in html and "Нечего" not in overdue
    # Nobody else sees it on their day.
    assert f"/inbox/tasks/{task.id}" not in pages.as_("manager2@demo.local").get("/").get_data(
        as_text=True)
