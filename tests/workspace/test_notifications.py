"""Notifications: new, delegated and overdue tasks, comments on my records, @mentions, the bell."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from automation.models import Notification
from automation.notifications import mark_read, notify_overdue, unread_count
from crm_models.services import add_comment, create_deal
from engine.store import ProcessTask

from ..factories import actor, make_deal
from .support import deploy, task_process


def notes(db, user, kind=None):
    db.rollback()
    db.expire_all()
    q = select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
    if kind:
        q = q.where(Notification.kind == kind)
    return list(db.scalars(q))


def test_a_routed_task_notifies_its_assignee(app, db, org, engine):
    deploy(db, engine, task_process())
    deal = create_deal(db, actor(db, org.m1), title="Станки")
    db.commit()  # the dispatcher routes the deal after the commit
    [n] = notes(db, org.m1)
    task = db.scalars(select(ProcessTask)).one()
    assert (n.kind, n.task_id, n.entity_type, n.entity_id) == ("task", task.id, "deal", deal.id)
    assert n.title == "Review the deal" and "Станки" in n.text
    assert notes(db, org.m2) == []


def test_role_tasks_notify_every_candidate_and_delegation_the_new_assignee(app, db, org, engine):
    deploy(db, engine, task_process(assignment="role", assignee="manager"))
    make_deal(db, org.m1)
    db.commit()
    task = db.scalars(select(ProcessTask)).one()
    candidates = set(task.candidate_ids)
    assert {org.m1.id, org.m2.id, org.corporate.id} <= candidates
    for user in (org.m1, org.m2, org.corporate):
        assert [n.kind for n in notes(db, user)] == ["task"]
    engine.claim(db, task.id, org.m2.id)
    db.commit()
    assert len(notes(db, org.m2)) == 1  # claiming tells nobody
    engine.delegate(db, task.id, org.m2.id, org.head.id)
    db.commit()
    [n] = notes(db, org.head)
    assert (n.kind, n.task_id) == ("task", task.id)


def test_a_rolled_back_task_notifies_nobody(app, db, org, engine):
    deploy(db, engine, task_process(assignee="m2@test.local", assignment="user"))
    make_deal(db, org.m1)
    db.commit()
    task = db.scalars(select(ProcessTask)).one()
    engine.delegate(db, task.id, org.m2.id, org.head.id)
    db.flush()
    db.rollback()
    assert notes(db, org.head) == []


def test_overdue_tasks_notify_their_holder_once(app, db, org, engine):
    deploy(db, engine, task_process(due="PT1H"))
    make_deal(db, org.m1)
    db.commit()
    task = db.scalars(select(ProcessTask)).one()
    inbox = engine.inbox(db, org.m1.id)
    assert notify_overdue(db, inbox, org.m1.id, task.due_at - dt.timedelta(minutes=1)) == 0
    later = task.due_at + dt.timedelta(minutes=1)
    assert notify_overdue(db, inbox, org.m1.id, later) == 1
    db.commit()
    assert notify_overdue(db, engine.inbox(db, org.m1.id), org.m1.id, later) == 0
    [n] = notes(db, org.m1, "overdue")
    assert n.task_id == task.id and n.dedup_key == f"overdue:{task.id}"
    # Someone else's inbox passes the task in: it is not theirs, nothing happens.
    assert notify_overdue(db, inbox, org.m2.id, later) == 0


def test_comments_on_my_record_and_mentions(app, db, org):
    deal = make_deal(db, org.m1, title="Поставка")
    db.commit()
    add_comment(db, actor(db, org.m1), entity_type="deal", entity_id=deal.id, text="my own note")
    db.commit()
    assert notes(db, org.m1) == []  # one's own comment tells nobody
    add_comment(db, actor(db, org.head), entity_type="deal", entity_id=deal.id,
                text="Please call them back, @manager one")  # case does not matter
    db.commit()
    [n] = notes(db, org.m1)
    assert (n.kind, n.entity_id, n.title) == ("mention", deal.id, "Поставка")
    add_comment(db, actor(db, org.head), entity_type="deal", entity_id=deal.id,
                text="@m2@test.local @Corporate Manager have a look")
    db.commit()
    assert [n.kind for n in notes(db, org.m1)] == ["mention", "comment"]
    # Manager Two may not read Manager One's deal: a mention must not reveal it.
    assert notes(db, org.m2) == []
    # The head of Corporate sees the deals of Sales? No: Corporate is below Sales.
    assert notes(db, org.corporate) == []


def test_the_bell_counts_unread_and_marks_read(app, db, org, engine, pages):
    deploy(db, engine, task_process())
    make_deal(db, org.m1)
    make_deal(db, org.m1)
    db.commit()
    html = pages.as_("m1@test.local").get("/").get_data(as_text=True)
    assert re.search(r'class="bell-count" data-unread="2"', html)
    bell = pages.as_("m1@test.local").get("/notifications/bell").get_data(as_text=True)
    assert 'data-unread="2"' in bell and 'hx-trigger="every 10s"' in bell
    listing = pages.as_("m1@test.local").get("/notifications").get_data(as_text=True)
    assert listing.count('class="notification kind-task is-unread"') == 2
    first = notes(db, org.m1)[0]
    r = pages.as_("m1@test.local").get(f"/notifications/{first.id}")
    assert r.status_code == 302 and r.headers["Location"].endswith(
        f"/inbox/tasks/{first.task_id}")
    db.rollback()  # end this session's snapshot: the request committed elsewhere
    assert unread_count(db, org.m1.id) == 1
    # Another user's notification is not there for them.
    assert pages.as_("m2@test.local").get(f"/notifications/{first.id}").status_code == 404
    r = pages.post("m1@test.local", "/notifications/read", headers={"HX-Request": "true"})
    assert r.status_code == 200 and 'data-unread="0"' in r.get_data(as_text=True)
    db.rollback()
    assert unread_count(db, org.m1.id) == 0


def test_the_bell_poll_rings_for_overdue_tasks(app, db, org, engine, pages, monkeypatch):
    deploy(db, engine, task_process(due="PT1H"))
    make_deal(db, org.m1)
    db.commit()
    task = db.scalars(select(ProcessTask)).one()
    mark_read(db, org.m1.id, None, task.created_at)
    db.commit()
    assert 'data-unread="0"' in pages.as_("m1@test.local").get(
        "/notifications/bell").get_data(as_text=True)
    monkeypatch.setattr(engine.clock, "now", lambda: task.due_at + dt.timedelta(hours=1))
    bell = pages.as_("m1@test.local").get("/notifications/bell").get_data(as_text=True)
    assert 'data-unread="1"' in bell
    [n] = notes(db, org.m1, "overdue")
    assert n.task_id == task.id


def test_mark_read_ignores_other_users_and_bad_ids(app, db, org):
    db.add(Notification(user_id=org.m1.id, title="x"))
    db.add(Notification(user_id=org.m2.id, title="y"))
    db.commit()
    theirs = notes(db, org.m2)[0]
    now = dt.datetime.now(dt.UTC)
    assert mark_read(db, org.m1.id, [theirs.id], now) == 0
    assert mark_read(db, org.m1.id, ["1", True], now) == 0
    assert mark_read(db, org.m1.id, None, now) == 1
    db.commit()
    assert unread_count(db, org.m2.id) == 1


def test_a_feed_comment_tells_the_records_responsible_and_the_mentioned(app, db, org):
    from crm_models.services.feed import comment_on_event, list_feed

    make_deal(db, org.m1, title="В ленте")
    db.commit()
    event = list_feed(db, actor(db, org.m1))[0]
    comment_on_event(db, actor(db, org.head), event.id, "@Corporate Manager, see this")
    db.commit()
    [n] = notes(db, org.m1)
    assert (n.kind, n.event_id, n.title) == ("comment", event.id, "В ленте")
    assert notes(db, org.corporate) == []  # cannot see Manager One's deal: not mentioned
    comment_on_event(db, actor(db, org.m1), event.id, "thanks @Head of Sales")
    db.commit()
    assert [(n.kind, n.event_id) for n in notes(db, org.head)] == [("mention", event.id)]
    assert len(notes(db, org.m1)) == 1  # one's own comment tells nobody


def test_tasks_for_unknown_or_deactivated_users_notify_nobody_and_fail_nothing(app, db, org,
                                                                              engine):
    from crm_models.services.org import update_user

    deploy(db, engine, task_process())
    make_deal(db, org.m1)
    db.commit()
    task = db.scalars(select(ProcessTask)).one()
    engine.delegate(db, task.id, org.m1.id, 999_999)  # the engine knows no users table
    db.commit()
    update_user(db, actor(db, org.admin), org.m2.id, active=False)
    db.commit()
    engine.delegate(db, task.id, 999_999, org.m2.id)
    db.commit()
    assert notes(db, org.m2) == []
    assert db.scalar(select(Notification.id).where(Notification.user_id == 999_999)) is None


def test_a_locked_database_does_not_fail_the_bell_poll(app, db, org, pages, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from web.workspace import notifications as web_notifications

    def locked(*_a, **_k):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(web_notifications, "notify_overdue", locked)
    r = pages.as_("m1@test.local").get("/notifications/bell")
    assert r.status_code == 200 and 'data-unread="0"' in r.get_data(as_text=True)
