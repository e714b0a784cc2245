"""``GET /api/v1/tasks`` a page at a time: ``per_page`` and ``after`` in, ``next`` and
``total`` out (the shape of the other lists), every task once, bad parameters named."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import make_inbox_tasks

from .support import api_as

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture()
def filled(app, db, org):
    """57 tasks of m1 (assigned or claimed, due times set and missing, three priorities),
    9 offered to m1 and m2, and tasks of m2 alone."""
    me, other = org.m1.id, org.m2.id
    specs = []
    for n in range(57):
        spec = {"priority": 1 + n % 3,
                "due_at": None if n % 5 == 0 else T0 + dt.timedelta(minutes=n % 7)}
        if n % 4 == 3:
            spec.update(status="claimed", claimed_by=me, candidate_ids=[me, other])
        else:
            spec["assignee_id"] = me
        specs.append(spec)
    specs += [{"priority": 2, "due_at": T0, "candidate_ids": [me, other]} for _ in range(9)]
    specs += [{"priority": 1, "due_at": T0, "assignee_id": other} for _ in range(4)]
    rows = make_inbox_tasks(db, specs)
    db.commit()
    return rows


def _order(rows):
    return [t.id for t in sorted(rows, key=lambda t: (t.priority, t.due_at is None,
                                                      t.due_at or T0, t.id))]


def walk(api, **query):
    ids, pages, after = [], 0, None
    while True:
        args = {**query} | ({"after": after} if after else {})
        r = api.get("/api/v1/tasks", query_string=args)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert set(body) == {"items", "total", "page", "per_page", "next"}
        ids += [t["id"] for t in body["items"]]
        pages += 1
        after = body["next"]
        if after is None:
            return ids, pages, body["total"]
        assert pages < 100


def test_the_first_page_holds_50_and_says_how_many_there_are(app, db, org, filled):
    body = api_as(app, db, "m1@test.local").get("/api/v1/tasks").get_json()
    assert len(body["items"]) == 50 and body["total"] == 57 and body["per_page"] == 50
    assert body["next"] and body["page"] == 1
    mine = [t for t in filled if t.assignee_id == org.m1.id or t.claimed_by == org.m1.id]
    assert [t["id"] for t in body["items"]] == _order(mine)[:50]


@pytest.mark.parametrize("per_page", [1, 7, 50, 56, 57, 500])
def test_paging_gives_every_task_once_in_inbox_order(app, db, org, filled, per_page):
    api = api_as(app, db, "m1@test.local")
    ids, pages, total = walk(api, per_page=per_page)
    mine = [t for t in filled if t.assignee_id == org.m1.id or t.claimed_by == org.m1.id]
    assert ids == _order(mine) and total == 57
    assert pages == -(-57 // per_page)


def test_offered_tasks_page_on_their_own(app, db, org, filled):
    ids, pages, total = walk(api_as(app, db, "m2@test.local"), candidate=1, per_page=4)
    offered = [t for t in filled if t.status == "open" and org.m2.id in t.candidate_ids]
    assert ids == _order(offered) and total == 9 and pages == 3
    ids, _, total = walk(api_as(app, db, "m2@test.local"), per_page=3)
    assert total == 4 and len(ids) == 4  # m2's own: assigned ones (claimed ones are m1's)


def test_a_task_completed_between_pages_is_neither_repeated_nor_skipping_others(app, db, org,
                                                                                filled):
    api = api_as(app, db, "m1@test.local")
    first = api.get("/api/v1/tasks", query_string={"per_page": 10}).get_json()
    done = next(t for t in filled if t.id == first["items"][3]["id"])
    done.status = "completed"  # (the placeholder instance has no workflow to complete)
    db.commit()
    rest = api.get("/api/v1/tasks", query_string={"per_page": 500,
                                                   "after": first["next"]}).get_json()
    mine = [t for t in filled if t.assignee_id == org.m1.id or t.claimed_by == org.m1.id]
    assert [t["id"] for t in first["items"]] + [t["id"] for t in rest["items"]] \
        == _order(mine)  # the completed one had been shown on the first page
    assert rest["total"] == 56 and rest["next"] is None


@pytest.mark.parametrize("query, field", [
    ({"after": "garbage"}, "after"), ({"after": "W10"}, "after"), ({"after": "x" * 401}, "after"),
    ({"after": "WyJ0YXNrIiwxLG51bGwsMF0"}, "after"),  # ["task",1,null,0]
    ({"after": "WyJpZCIsMSwxXQ"}, "after"),  # ["id",1,1]: a record list's cursor
    ({"per_page": "0"}, "per_page"), ({"per_page": "501"}, "per_page"),
    ({"per_page": "ten"}, "per_page"), ({"per_page": "-1"}, "per_page"),
    ({"per_page": "%D9%A1"}, "per_page"), ({"page": "2"}, "page"),
    ({"candidate": "yes"}, "candidate"),
])
def test_bad_paging_parameters_are_refused_naming_them(app, db, org, filled, query, field):
    r = api_as(app, db, "m1@test.local").get("/api/v1/tasks", query_string=query)
    assert r.status_code == 422, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == "validation_failed" and set(err["fields"]) == {field}


def test_a_repeated_after_is_refused(app, db, org, filled):
    r = api_as(app, db, "m1@test.local").get("/api/v1/tasks?after=a&after=b")
    assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == {"after"}


def test_the_openapi_document_describes_the_paging(app, db, org):
    doc = api_as(app, db, "m1@test.local").get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/api/v1/tasks"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert {"candidate", "per_page", "after"} <= set(params)
    assert params["per_page"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 500,
                                            "default": 50}
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/TaskPage"}
    page = doc["components"]["schemas"]["TaskPage"]
    assert {"items", "total", "next"} <= set(page["properties"])
    assert page["properties"]["items"]["items"] == {"$ref": "#/components/schemas/Task"}
