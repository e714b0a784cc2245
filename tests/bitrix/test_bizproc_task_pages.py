"""``bizproc.task.list`` pages as Bitrix24 lists do: 50 rows from ``start``, ``next`` while
more follow, ``total`` (none with ``start=-1``); only the page asked for is read."""
from __future__ import annotations

import datetime as dt

import pytest

from engine.runtime import Engine
from tests.factories import make_inbox_tasks

from .test_clients import sdk_client

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
COUNT = 123


@pytest.fixture()
def filled(db, org):
    me, other = org.m1.id, org.m2.id
    specs = []
    for n in range(COUNT):
        spec = {"priority": 1 + n % 3,
                "due_at": None if n % 7 == 0 else T0 + dt.timedelta(minutes=n % 11)}
        if n % 6 == 5:
            spec["candidate_ids"] = [me, other]
        elif n % 6 == 4:
            spec.update(status="claimed", claimed_by=me, candidate_ids=[me, other])
        else:
            spec["assignee_id"] = me
        specs.append(spec)
    specs += [{"priority": 1, "due_at": T0, "assignee_id": other},
              {"priority": 1, "due_at": T0, "assignee_id": me, "status": "completed"}]
    rows = make_inbox_tasks(db, specs)
    db.commit()
    mine = [t for t in rows if t.status in ("open", "claimed") and me in (
        t.assignee_id, t.claimed_by, *(t.candidate_ids if t.status == "open" else []))]
    return [str(t.id) for t in sorted(mine, key=lambda t: (t.priority, t.due_at is None,
                                                           t.due_at or T0, t.id))]


@pytest.fixture()
def no_whole_inbox(monkeypatch):
    """Fails a call that would read the whole inbox."""
    def whole(*args, **kw):
        raise AssertionError("bizproc.task.list read the whole inbox")
    monkeypatch.setattr(Engine, "inbox", whole)


def test_pages_of_50_with_next_and_total(app, org, db, m1_hook, rest, filled,
                                         no_whole_inbox):
    assert len(filled) == COUNT
    seen, start, answers = [], 0, []
    while True:
        status, body = rest(m1_hook, "bizproc.task.list", {"start": start, "SELECT": ["ID"]})
        assert status == 200, body
        answers.append((len(body["result"]), body.get("next"), body["total"]))
        seen += [t["ID"] for t in body["result"]]
        if "next" not in body:
            break
        start = body["next"]
    assert answers == [(50, 50, COUNT), (50, 100, COUNT), (COUNT - 100, None, COUNT)]
    assert seen == filled


def test_start_minus_one_skips_the_count_and_an_offset_past_the_end_is_empty(
        app, org, db, m1_hook, rest, filled, no_whole_inbox):
    body = rest(m1_hook, "bizproc.task.list", {"start": -1})[1]
    assert [t["ID"] for t in body["result"]] == filled[:50]
    assert "total" not in body and "next" not in body
    body = rest(m1_hook, "bizproc.task.list", {"start": 500})[1]
    assert body["result"] == [] and body["total"] == COUNT and "next" not in body
    body = rest(m1_hook, "bizproc.task.list", {"start": 75})[1]  # any offset, not only x50
    assert [t["ID"] for t in body["result"]] == filled[75:125] and "next" not in body


def test_an_administrator_pages_through_someone_elses_tasks(app, org, db, admin_hook, rest,
                                                            filled):
    body = rest(admin_hook, "bizproc.task.list", {"FILTER": {"USER_ID": org.m1.id},
                                                  "start": 100})[1]
    assert [t["ID"] for t in body["result"]] == filled[100:] and body["total"] == COUNT


def test_filtered_lists_page_too(app, org, db, m1_hook, rest, filled):
    one = rest(m1_hook, "bizproc.task.list", {"FILTER": {"USER_ID": org.m1.id,
                                                         "NAME": "Task 4"}})[1]
    assert [t["NAME"] for t in one["result"]] == ["Task 4"] and one["total"] == 1
    assert one["result"][0]["ID"] in filled and "next" not in one
    body = rest(m1_hook, "bizproc.task.list", {"FILTER": {"STATUS": 0}, "start": 50})[1]
    assert body["total"] == COUNT and body["next"] == 100
    assert [t["ID"] for t in body["result"]] == filled[50:100]


def test_a_bad_start_is_refused(app, org, db, m1_hook, rest, filled):
    for start in ("x", "-2", "1.5"):
        status, body = rest(m1_hook, "bizproc.task.list", {"start": start})
        assert status == 400 and "start" in body["error_description"], (start, body)


def test_b24pysdk_gets_every_task_with_as_list(app, org, db, m1_hook, tls_server, filled):
    client = sdk_client(tls_server, m1_hook)
    every = client.bizproc.task.list(select=["ID"]).as_list().result
    assert [t["ID"] for t in every] == filled
