"""The permission matrix through /api/v1, derived from Bitrix24's level semantics.

Each built-in role acts on records owned by itself, a colleague of the same department,
someone in a sub-department and someone in another department, each once open to everyone
and once not. What the role may do is worked out here from the documented levels
(own ⊂ department ⊂ sub-departments ⊂ open ⊂ all), not read from the code under test.
"""
from __future__ import annotations

from typing import Any

import pytest

from crm_models.entities import ENTITY_MODELS

from ..factories import make_company, make_contact, make_deal, make_lead, make_user
from .api_support import (  # noqa: F401  (fast_passwords: an autouse fixture)
    PLURALS,
    api_for,
    error_of,
    fast_passwords,
    row_counts,
)

NONE, OWN, DEPARTMENT, SUBDEPARTMENTS, OPEN, ALL = range(6)
ACTIONS = ("read", "add", "update", "delete")
#: The built-in roles as the product defines them.
ROLE_LEVELS = {
    "admin": dict.fromkeys(ACTIONS, ALL),
    "sales_head": dict.fromkeys(ACTIONS, SUBDEPARTMENTS),
    "manager": dict.fromkeys(ACTIONS, OWN),
    "observer": {"read": OPEN, "add": NONE, "update": NONE, "delete": NONE},
}
#: The least level that reaches a record by whom it belongs to.
REACH = {"own": OWN, "department": DEPARTMENT, "subdepartment": SUBDEPARTMENTS, "other": ALL}
RELATIONS = tuple(REACH)
MAKERS = {"lead": make_lead, "deal": make_deal, "contact": make_contact,
          "company": make_company}


def allowed(level: int, relation: str, opened: bool) -> bool:
    """Whether ``level`` reaches a record of ``relation``; an open record is reached at OPEN."""
    need = min(REACH[relation], OPEN) if opened else REACH[relation]
    return level > NONE and level >= need


def naming(entity: str, marker: str) -> dict[str, str]:
    return {"last_name": marker} if entity == "contact" else {"title": marker}


def acting_user(db: Any, org: Any, role: str) -> Any:
    """Someone with ``role`` in the Sales department (whose sub-department is Corporate)."""
    if role == "sales_head":
        return org.head
    if role == "manager":
        return org.m1
    return make_user(db, role_code=role, department_id=org.sales_id)


def owners(org: Any, user: Any) -> dict[str, Any]:
    return {"own": user, "department": org.m2, "subdepartment": org.corporate,
            "other": org.outsider}


@pytest.mark.parametrize("entity", list(PLURALS))
@pytest.mark.parametrize("role", list(ROLE_LEVELS))
def test_permission_matrix(app, db, org, role, entity):
    user = acting_user(db, org, role)
    who = owners(org, user)
    records: dict[tuple[str, bool], int] = {}
    markers: dict[tuple[str, bool], str] = {}
    for relation, owner in who.items():
        for opened in (True, False):
            marker = f"Zq{relation}{'open' if opened else 'closed'}"
            rec = MAKERS[entity](db, owner, opened=opened, **naming(entity, marker))
            records[(relation, opened)], markers[(relation, opened)] = rec.id, marker
    db.commit()
    api = api_for(app, db, user)
    plural, levels = PLURALS[entity], ROLE_LEVELS[role]
    readable = {k for k in records if allowed(levels["read"], *k)}
    wrong: list[str] = []

    def expect(what: str, got: Any, want: Any) -> None:
        if got != want:
            wrong.append(f"{role} {entity} {what}: got {got!r}, want {want!r}")

    # read: one by one, and through every listing route
    for key, rid in records.items():
        expect(f"GET {key}", api.get(f"/api/v1/{plural}/{rid}").status_code,
               200 if key in readable else 404)
    want_ids = sorted(records[k] for k in readable)
    listed = api.get(f"/api/v1/{plural}", query_string={"per_page": 500}).get_json()
    expect("list ids", sorted(i["id"] for i in listed["items"]), want_ids)
    expect("list total", listed["total"], len(want_ids))
    found = api.get(f"/api/v1/{plural}", query_string={"q": "zq"}).get_json()
    expect("search ids", sorted(i["id"] for i in found["items"]), want_ids)
    expect("search total", found["total"], len(want_ids))
    for key, marker in markers.items():
        total = api.get(f"/api/v1/{plural}", query_string={"q": marker}).get_json()["total"]
        expect(f"search {key}", total, int(key in readable))
        total = api.get(f"/api/v1/{plural}", query_string={"id": records[key]}).get_json()["total"]
        expect(f"filter id {key}", total, int(key in readable))
    for relation, owner in who.items():
        total = api.get(f"/api/v1/{plural}",
                        query_string={"responsible_id": owner.id}).get_json()["total"]
        expect(f"filter responsible {relation}", total,
               sum(1 for k in readable if k[0] == relation))

    # add, with each possible responsible user
    for relation, owner in who.items():
        for opened in (True, False):
            r = api.post(f"/api/v1/{plural}", json={
                **naming(entity, "Added"), "responsible_id": owner.id, "opened": opened})
            expect(f"add {relation} open={opened}", r.status_code,
                   201 if allowed(levels["add"], relation, opened) else 403)

    # update and delete: 403 where the record can be seen, 404 where it cannot
    for action, call, ok in (("update", lambda p: api.patch(p, json={"comments": "changed"}),
                              200),
                             ("delete", lambda p: api.delete(p), 204)):
        for key, rid in records.items():
            want = ok if allowed(levels[action], *key) else (403 if key in readable else 404)
            expect(f"{action} {key}", call(f"/api/v1/{plural}/{rid}").status_code, want)

    assert wrong == []
    # refused writes left no trace
    db.rollback()
    db.expunge_all()
    model = ENTITY_MODELS[entity]
    for key, rid in records.items():
        row = db.get(model, rid)
        assert (row is None) == allowed(levels["delete"], *key), key
        if row is not None:
            assert row.comments == ("changed" if allowed(levels["update"], *key) else ""), key


def test_a_manager_with_own_sees_none_of_the_others_deals_anywhere(app, db, org):
    mine = make_deal(db, org.m1, title="Mine", amount="10.00")
    others = [make_deal(db, owner, title=f"Theirs {owner.full_name}", amount="500.00",
                        opened=opened)
              for owner in (org.m2, org.head, org.corporate, org.outsider, org.admin)
              for opened in (True, False)]
    lead = make_lead(db, org.m2, title="Their lead", last_name="Chужой")
    db.commit()
    api = api_for(app, db, org.m1)
    # (query, whether the manager's own deal matches it)
    queries: list[tuple[dict[str, Any], bool]] = [
        ({}, True), ({"q": "theirs"}, False), ({"q": "500"}, False),
        ({"responsible_id": org.m2.id}, False),
        ({"responsible_id__in": f"{org.m2.id},{org.head.id}"}, False),
        ({"amount__gte": "100"}, False), ({"stage": "NEW"}, True), ({"sort": "-amount"}, True),
        ({"page": 2, "per_page": 1}, True), ({"opened": "true"}, True),
        ({"id__in": ",".join(str(d.id) for d in others)}, False),
        ({"title__contains": "their"}, False),
    ]
    for query, matches_mine in queries:
        body = api.get("/api/v1/deals", query_string=query).get_json()
        assert {d["id"] for d in body["items"]} <= {mine.id}, query
        assert body["total"] == int(matches_mine), query
    for deal in others:
        base = f"/api/v1/deals/{deal.id}"
        for method, path, body in (("GET", base, None), ("PATCH", base, {"title": "x"}),
                                   ("DELETE", base, None), ("GET", f"{base}/comments", None),
                                   ("POST", f"{base}/comments", {"text": "x"}),
                                   ("GET", f"{base}/activities", None),
                                   ("POST", f"{base}/activities",
                                    {"type": "call", "subject": "x"}),
                                   ("POST", f"{base}/stage", {"stage": "WON"})):
            r = api.call(method, path, body)
            assert r.status_code == 404, (method, path)
            assert deal.title not in r.get_data(as_text=True)
    for path in (f"/api/v1/leads/{lead.id}/conversion-preview", f"/api/v1/leads/{lead.id}"):
        assert api.get(path).status_code == 404
    assert api.post(f"/api/v1/leads/{lead.id}/convert").status_code == 404
    assert api.get("/api/v1/leads").get_json()["total"] == 0


def test_conversion_needs_add_rights_on_what_it_creates(app, db, org):
    observer_lead = make_lead(db, org.m1, title="Open lead", last_name="X", opened=True)
    own_lead = make_lead(db, org.m1, title="Own lead", last_name="Y", company_title="Z")
    db.commit()
    before = row_counts(db)
    watcher = api_for(app, db, org.observer)
    assert watcher.get(f"/api/v1/leads/{observer_lead.id}").status_code == 200
    r = watcher.post(f"/api/v1/leads/{observer_lead.id}/convert")
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden"
    assert row_counts(db) == before
    assert api_for(app, db, org.m1).post(f"/api/v1/leads/{own_lead.id}/convert").status_code == 201


ADMIN_ONLY = [
    ("POST", "/api/v1/users", {"email": "new@test.local", "full_name": "New", "password": "pw12"}),
    ("PATCH", "/api/v1/users/{m2}", {"full_name": "Renamed"}),
    ("POST", "/api/v1/departments", {"name": "New department"}),
    ("PATCH", "/api/v1/departments/{sales}", {"name": "Renamed"}),
    ("DELETE", "/api/v1/departments/{support}", None),
    ("POST", "/api/v1/roles", {"name": "New role"}),
    ("PATCH", "/api/v1/roles/{manager_role}", {"permissions": {"deal": {"read": 5}}}),
    ("POST", "/api/v1/roles/{manager_role}/grants", {"user_id": "{m2}"}),
]


@pytest.mark.parametrize("role", ["sales_head", "manager", "observer"])
def test_only_admins_change_the_org(app, db, org, role):
    from ..factories import role as role_of

    user = acting_user(db, org, role)
    db.commit()
    ids = {"m2": org.m2.id, "sales": org.sales_id, "support": org.support_id,
           "manager_role": role_of(db, "manager").id}
    api = api_for(app, db, user)
    before = row_counts(db)
    for method, path, body in ADMIN_ONLY:
        if body is not None:
            body = {k: ids[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v
                    for k, v in body.items()}
        r = api.call(method, path.format(**ids), body)
        assert r.status_code == 403, (role, method, path, r.get_json())
        assert error_of(r)["code"] == "forbidden"
    assert row_counts(db) == before
    # reading the org is open to every signed-in user
    for path in ("/api/v1/users", f"/api/v1/users/{org.m2.id}", "/api/v1/departments",
                 f"/api/v1/departments/{org.sales_id}", "/api/v1/roles", "/api/v1/users/me",
                 f"/api/v1/roles/{ids['manager_role']}/grants"):
        assert api.get(path).status_code == 200, path
