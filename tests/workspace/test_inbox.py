"""The inbox pages: lists, forms, completing, claiming, delegating, out of office."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import event, select

from crm_models.org import User
from crm_models.services import update_deal
from engine.store import ProcessInstance, ProcessTask

from ..factories import SYSTEM, make_deal
from .support import deploy, task_process


def task_ids(html: str, section: str) -> list[int]:
    part = html.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
    return [int(i) for i in re.findall(r'data-task-id="(\d+)"', part)]


def fresh(db, model, **where):
    db.rollback()  # see what the requests committed…
    db.expire_all()  # … even when no transaction was open (then rollback expires nothing)
    q = select(model)
    for k, v in where.items():
        q = q.where(getattr(model, k) == v)
    return db.scalars(q.order_by(model.id)).all()


def test_my_tasks_sorted_by_due_with_record_instructions_and_form(app, db, org, engine, pages):
    deploy(db, engine, task_process(due="PT1H"))
    late = make_deal(db, org.m1, title="Late one", amount="1500")
    db.commit()
    soon = make_deal(db, org.m1, title="Soon one")
    db.commit()
    t_late, t_soon = fresh(db, ProcessTask)
    # Make the first task overdue and the second due later.
    t_late.due_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    t_soon.due_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)
    db.commit()
    html = pages.as_("m1@test.local").get("/inbox").get_data(as_text=True)
    assert task_ids(html, "my-tasks") == [t_late.id, t_soon.id]
    card = html.split(f'id="task-{t_late.id}"', 1)[1].split("</article>", 1)[0]
    assert "is-overdue" in html.split(f'id="task-{t_late.id}"', 1)[0][-200:]
    assert "Late one" in card and "Check «Late one» before it goes on." in card
    assert 'name="note"' in card and 'type="number"' in card
    assert 'name="decision" value="approve"' in card and 'name="decision" value="reject"' in card
    assert late.id != soon.id
    # Another manager's inbox is empty, and their record is not shown to them.
    other = pages.as_("m2@test.local").get("/inbox").get_data(as_text=True)
    assert task_ids(other, "my-tasks") == [] and "Late one" not in other


def test_completing_validates_per_field_then_continues_the_process(app, db, org, engine, pages):
    deploy(db, engine, task_process())
    make_deal(db, org.m1)
    db.commit()
    [task] = fresh(db, ProcessTask)
    url = f"/inbox/tasks/{task.id}/complete"
    r = pages.post("m1@test.local", url, {"note": "", "score": "many", "decision": "approve"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert re.search(r'data-field="note">[^<]+<', html)
    assert re.search(r'data-field="score">[^<]+<', html)
    assert 'value="many"' in html  # what was typed stays
    assert fresh(db, ProcessTask)[0].status == "open"
    r = pages.post("m1@test.local", url, {"note": "ok", "score": "7", "decision": "maybe"})
    assert r.status_code == 422 and 'data-field="decision"' in r.get_data(as_text=True)
    r = pages.post("m1@test.local", url, {"note": "ok", "score": "7", "decision": "approve",
                                          "sneaky": "x"})
    assert r.status_code == 302
    [task] = fresh(db, ProcessTask)
    assert task.status == "completed" and task.result == {"note": "ok", "score": 7,
                                                          "decision": "approve"}
    assert fresh(db, ProcessInstance)[0].status == "completed"
    r = pages.post("m1@test.local", url, {"note": "again", "decision": "approve"})
    assert r.status_code == 409  # already done


def test_role_tasks_are_claimed_then_completed_or_delegated(app, db, org, engine, pages):
    deploy(db, engine, task_process(assignment="role", assignee="manager"))
    make_deal(db, org.m1)
    db.commit()
    [task] = fresh(db, ProcessTask)
    html = pages.as_("m2@test.local").get("/inbox").get_data(as_text=True)
    assert task_ids(html, "offered-tasks") == [task.id] and task_ids(html, "my-tasks") == []
    assert "Claim" in html or "Взять" in html
    # Manager Two may not read Manager One's deal: the task shows without it.
    card = html.split(f'id="task-{task.id}"', 1)[1].split("</article>", 1)[0]
    assert "/deals/" not in card
    assert pages.post("m2@test.local", f"/inbox/tasks/{task.id}/claim").status_code == 302
    html = pages.as_("m2@test.local").get("/inbox").get_data(as_text=True)
    assert task_ids(html, "my-tasks") == [task.id]
    r = pages.post("m1@test.local", f"/inbox/tasks/{task.id}/claim")
    assert r.status_code == 409  # taken by Manager Two
    r = pages.post("m2@test.local", f"/inbox/tasks/{task.id}/delegate", {"user_id": "999999"})
    assert r.status_code == 422
    r = pages.post("m2@test.local", f"/inbox/tasks/{task.id}/delegate",
                   {"user_id": str(org.head.id)})
    assert r.status_code == 302
    [task] = fresh(db, ProcessTask)
    assert (task.assignee_id, task.status, task.claimed_by) == (org.head.id, "open", None)
    html = pages.as_("head@test.local").get("/inbox").get_data(as_text=True)
    assert task_ids(html, "my-tasks") == [task.id]


def test_someone_elses_task_is_not_found(app, db, org, engine, pages):
    deploy(db, engine, task_process())
    make_deal(db, org.m1)
    db.commit()
    [task] = fresh(db, ProcessTask)
    assert pages.as_("m2@test.local").get(f"/inbox/tasks/{task.id}").status_code == 404
    assert pages.post("m2@test.local", f"/inbox/tasks/{task.id}/complete",
                      {"note": "x", "decision": "approve"}).status_code == 404
    assert pages.as_("m1@test.local").get("/inbox/tasks/999999").status_code == 404
    assert pages.as_("m1@test.local").get(f"/inbox/tasks/{task.id}").status_code == 200


def test_out_of_office_sends_new_tasks_to_the_deputy(app, db, org, engine, pages):
    deploy(db, engine, task_process(away="deputy"))
    now = dt.datetime.now(dt.UTC)
    r = pages.post("m1@test.local", "/profile", {
        "out_of_office_from": (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "out_of_office_until": (now + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "deputy_id": str(org.m2.id)})
    assert r.status_code == 302
    me = fresh(db, User, id=org.m1.id)[0]
    assert me.deputy_id == org.m2.id and me.is_out_of_office(now)
    make_deal(db, org.m1, title="While away")
    db.commit()
    [task] = fresh(db, ProcessTask)
    assert task.assignee_id == org.m2.id
    html = pages.as_("m1@test.local").get("/inbox").get_data(as_text=True)
    assert "Manager Two" in html.split('class="flash flash-info"', 1)[1].split("</p>", 1)[0]
    # Back: the period is cleared, new tasks are one's own again.
    assert pages.post("m1@test.local", "/profile", {"clear": "1"}).status_code == 302
    db.rollback()  # SQLite: a snapshot older than the request's write cannot write
    make_deal(db, org.m1, title="Back again")
    db.commit()
    assert fresh(db, ProcessTask)[-1].assignee_id == org.m1.id


def test_profile_errors_are_shown_next_to_the_fields(app, db, org, pages):
    r = pages.post("m1@test.local", "/profile", {"out_of_office_from": "2026-05-10T10:00",
                                                 "out_of_office_until": "", "deputy_id": ""})
    assert r.status_code == 422 and 'id="err-out_of_office_until"' in r.get_data(as_text=True)
    r = pages.post("m1@test.local", "/profile", {"out_of_office_from": "2026-05-10T10:00",
                                                 "out_of_office_until": "2026-05-01T10:00",
                                                 "deputy_id": str(org.m1.id)})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and 'id="err-deputy_id"' in html
    r = pages.post("m1@test.local", "/profile", {"out_of_office_from": "garbage",
                                                 "out_of_office_until": "2026-05-01T10:00"})
    assert r.status_code == 422 and 'id="err-out_of_office_from"' in r.get_data(as_text=True)


def _statements(app, get):
    seen = []

    def count(*args):
        seen.append(1)

    engine = app.extensions["db_engine"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        html = get()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen), html


def test_records_are_read_per_type_not_per_task_and_unreadable_ones_hidden(app, db, org,
                                                                            engine, pages):
    deploy(db, engine, task_process())
    deals = [make_deal(db, org.m1, title=f"Mine {i}") for i in range(2)]
    db.commit()
    client = pages.as_("m1@test.local")
    client.get("/inbox")  # the session's first request reads more (user, rights)
    few, _ = _statements(app, lambda: client.get("/inbox").get_data(as_text=True))
    deals += [make_deal(db, org.m1, title=f"Mine {i}") for i in range(2, 6)]
    db.commit()
    # one record goes to another manager: m1 keeps the task, but may not read the deal
    update_deal(db, SYSTEM, deals[0].id, responsible_id=org.m2.id)
    db.commit()
    many, html = _statements(app, lambda: client.get("/inbox").get_data(as_text=True))
    assert len(task_ids(html, "my-tasks")) == 6
    assert many == few  # six tasks cost what two did
    links = set(re.findall(r'href="/deals/(\d+)"', html))
    assert links == {str(d.id) for d in deals[1:]}  # the task of deal 0 shows, not the deal
