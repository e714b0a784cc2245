"""Keyset pages of the inbox (``Engine.inbox_page``): one order on both databases (due times
set before none), every task exactly once across the pages, cursors that refuse garbage."""
from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from crm_models.services import keyset
from engine.inbox import BadCursor, InboxKey, decode_cursor, encode_cursor
from tests.factories import make_inbox_tasks

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
ME, OTHER = 11, 12


def _specs():
    """23 tasks of user 11 over three priorities with due times set, equal and missing, in
    every way a task reaches an inbox; and tasks of others or finished ones that must not."""
    out = []
    for n in range(18):
        due = None if n % 4 == 0 else T0 + dt.timedelta(hours=n % 3)  # ties on purpose
        how = n % 3
        spec = {"priority": 1 + n % 3, "due_at": due}
        if how == 0:
            spec["assignee_id"] = ME
        elif how == 1:
            spec["candidate_ids"] = [ME, OTHER]
        else:
            spec.update(status="claimed", claimed_by=ME, candidate_ids=[ME, OTHER])
        out.append(spec)
    out += [{"priority": 2, "due_at": None, "assignee_id": ME} for _ in range(3)]
    out += [{"priority": 2, "due_at": T0, "assignee_id": ME, "candidate_ids": [ME]},
            {"priority": 3, "due_at": T0, "assignee_id": ME}]
    out += [{"priority": 1, "due_at": T0, "assignee_id": OTHER},
            {"priority": 1, "due_at": T0, "assignee_id": ME, "status": "completed"},
            {"priority": 1, "due_at": T0, "candidate_ids": [OTHER]},
            {"priority": 1, "due_at": T0, "status": "claimed", "claimed_by": OTHER,
             "candidate_ids": [ME, OTHER]}]
    return out


def _order(rows):
    return [t.id for t in sorted(rows, key=lambda t: (t.priority, t.due_at is None,
                                                      t.due_at or T0, t.id))]


@pytest.fixture()
def tasks(db):
    rows = make_inbox_tasks(db, _specs())
    db.commit()
    return rows


def _mine(rows, scope="all"):
    def wanted(t):
        assigned = t.status == "open" and t.assignee_id == ME
        claimed = t.status == "claimed" and t.claimed_by == ME
        offered = t.status == "open" and ME in t.candidate_ids
        return {"all": assigned or claimed or offered, "mine": assigned or claimed,
                "offered": offered}[scope]
    return [t for t in rows if wanted(t)]


def _walk(engine, db, limit, scope="all"):
    seen, cursor, pages = [], None, 0
    while True:
        page = engine.inbox_page(db, ME, limit=limit, after=cursor, scope=scope)
        assert len(page.tasks) <= limit
        seen += [t.id for t in page.tasks]
        pages += 1
        if page.next is None:
            return seen, pages
        assert len(page.tasks) == limit
        cursor = page.next


@pytest.mark.parametrize("limit", [1, 4, 7, 23, 50])
def test_pages_give_every_task_once_in_inbox_order(engine, db, tasks, limit):
    expected = _order(_mine(tasks))
    assert len(expected) == 23
    seen, pages = _walk(engine, db, limit)
    assert seen == expected
    assert pages == max(1, -(-len(expected) // limit))


def test_tasks_without_a_due_time_come_after_those_with_one_on_every_database(engine, db,
                                                                              tasks):
    got = engine.inbox(db, ME)
    assert [t.id for t in got] == _order(_mine(tasks))
    for prio in (1, 2, 3):
        dues = [t.due_at for t in got if t.priority == prio]
        assert None in dues and dues.index(None) == len(dues) - dues[::-1].count(None), dues


@pytest.mark.parametrize("scope", ["mine", "offered"])
def test_a_scope_pages_through_its_own_part(engine, db, tasks, scope):
    seen, _ = _walk(engine, db, 5, scope)
    assert seen == _order(_mine(tasks, scope))
    assert engine.inbox_count(db, ME, scope=scope) == len(seen)


def test_the_count_counts_a_task_both_assigned_and_offered_once(engine, db, tasks):
    assert engine.inbox_count(db, ME) == 23 == len(engine.inbox(db, ME))
    assert engine.inbox_count(db, 99) == 0


def test_tasks_finished_or_added_between_pages_neither_repeat_nor_hide_others(engine, db,
                                                                              tasks):
    first = engine.inbox_page(db, ME, limit=5)
    expected = _order(_mine(tasks))
    assert [t.id for t in first.tasks] == expected[:5]
    first.tasks[0].status = "completed"  # done while the user reads the page
    late = next(t for t in tasks if t.id == expected[9])
    late.status = "completed"
    [new] = make_inbox_tasks(db, [{"priority": 3, "due_at": None, "assignee_id": ME}])
    db.commit()
    rest, cursor = [], first.next
    while cursor is not None:
        page = engine.inbox_page(db, ME, limit=5, after=cursor)
        rest += [t.id for t in page.tasks]
        cursor = page.next
    assert rest == [i for i in expected[5:] if i != late.id] + [new.id]


def test_a_cursor_round_trips_with_and_without_a_due_time():
    for key in (InboxKey(2, T0, 7), InboxKey(1, None, 2**31 - 1),
                InboxKey(3, T0.astimezone(dt.timezone(dt.timedelta(hours=3))), 1)):
        back = decode_cursor(encode_cursor(key))
        assert back == key and (back.due_at is None or back.due_at.tzinfo is not None)


def _b64(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "", "x", "!!!!", "a" * 500, 12, None.__class__.__name__,
    _b64(["task", 1, None]), _b64(["task", "1", None, 5]), _b64(["task", 1, None, 0]),
    _b64(["task", 1, None, True]), _b64(["task", 1, "tomorrow", 5]),
    _b64(["task", 1, "2026-12-01T09:00:00", 5]),  # no offset: which zone?
    _b64(["task", 2**40, None, 5]), _b64({"task": 1}), _b64("task"),
    keyset.encode("created_at", "2026-12-01T09:00:00+00:00", 5),  # a record list's cursor
])
def test_a_malformed_cursor_is_an_error_naming_after(engine, db, cursor):
    with pytest.raises(BadCursor) as err:
        engine.inbox_page(db, ME, limit=5, after=cursor)
    assert set(err.value.fields) == {"after"} and err.value.status == 422


def test_limit_and_scope_are_checked(engine, db):
    from engine.errors import EngineError
    with pytest.raises(EngineError) as err:
        engine.inbox_page(db, ME, limit=0)
    assert "limit" in err.value.fields
    with pytest.raises(EngineError) as err:
        engine.inbox_page(db, ME, limit=5, scope="everything")
    assert "scope" in err.value.fields


def test_a_slice_by_offset_is_the_same_order(engine, db, tasks):
    expected = _order(_mine(tasks))
    for offset in (0, 5, 20, 23, 40):
        got = engine.inbox_slice(db, ME, offset=offset, limit=5)
        assert [t.id for t in got] == expected[offset:offset + 5]
    from engine.errors import EngineError
    with pytest.raises(EngineError) as err:
        engine.inbox_slice(db, ME, offset=-1, limit=5)
    assert "offset" in err.value.fields
