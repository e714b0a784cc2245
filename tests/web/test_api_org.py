"""Users, departments, roles and grants through /api/v1."""
from __future__ import annotations

import pytest

from ..factories import make_user, role
from .api_support import (  # noqa: F401  (fast_passwords: an autouse fixture)
    Api,
    api_for,
    error_of,
    fast_passwords,
    row_counts,
)


@pytest.fixture()
def admin(app, db, org):
    return api_for(app, db, org.admin)


@pytest.fixture()
def manager(app, db, org):
    return api_for(app, db, org.m1)


def test_users_are_readable_without_password_hashes(app, db, org, manager):
    make_user(db, full_name="Иван Грозный", email="ivan@test.local", department_id=org.sales_id)
    db.commit()
    r = manager.get("/api/v1/users", query_string={"per_page": 500})
    body = r.get_json()
    assert body["total"] == 8 and len(body["items"]) == 8
    for path in ("/api/v1/users", f"/api/v1/users/{org.m2.id}", "/api/v1/users/me"):
        text = manager.get(path).get_data(as_text=True)
        assert "password" not in text and "$argon2" not in text, path
    assert [u["email"] for u in manager.get("/api/v1/users", query_string={"q": "ИВАН"})
            .get_json()["items"]] == ["ivan@test.local"]
    in_sales = manager.get("/api/v1/users", query_string={"department_id": org.sales_id})
    assert {u["id"] for u in in_sales.get_json()["items"]} >= {org.m1.id, org.m2.id, org.head.id}
    assert org.outsider.id not in {u["id"] for u in in_sales.get_json()["items"]}
    paged = manager.get("/api/v1/users", query_string={"per_page": 3, "page": 3}).get_json()
    assert (paged["total"], len(paged["items"])) == (8, 2)
    for bad, field in (("department_id=x", "department_id"), ("active=maybe", "active"),
                       ("department_id=2199023255552", "department_id"),
                       ("department_id=%C2%B2", "department_id"),
                       ("department_id=%D9%A1", "department_id"),
                       ("page=0", "page"), ("per_page=1000", "per_page")):
        r = manager.get("/api/v1/users?" + bad)
        assert r.status_code == 422 and field in error_of(r)["fields"]
    assert manager.get("/api/v1/users/999999").status_code == 404
    assert manager.get("/api/v1/users/abc").status_code == 404


def test_me_shows_effective_rights(org, manager, admin):
    me = manager.get("/api/v1/users/me").get_json()
    assert me["id"] == org.m1.id and me["is_admin"] is False
    assert me["permissions"]["deal"]["read"] == 1 and me["permissions"]["deal"]["import"] == 0
    assert [r["code"] for r in me["roles"]] == ["manager"]
    boss = admin.get("/api/v1/users/me").get_json()
    assert boss["is_admin"] is True and "manage_settings" in boss["flags"]
    assert boss["permissions"]["company"]["delete"] == 5


def test_admin_creates_a_user_who_can_then_log_in(app, db, org, admin):
    manager_role = role(db, "manager").id
    r = admin.post("/api/v1/users", json={
        "email": "New.Person@Test.Local", "full_name": "Новый Сотрудник", "password": "s3cret!",
        "department_id": org.sales_id, "locale": "en", "role_ids": [manager_role]})
    assert r.status_code == 201, r.get_json()
    user = r.get_json()
    assert user["email"] == "new.person@test.local" and user["department_id"] == org.sales_id
    assert [x["code"] for x in user["roles"]] == ["manager"]
    assert "password" not in r.get_data(as_text=True)
    login = app.test_client().post("/api/v1/auth/login",
                                   json={"email": "new.person@test.local", "password": "s3cret!"})
    assert login.status_code == 200
    me = Api(app.test_client(), login.get_json()["token"]).get("/api/v1/users/me").get_json()
    assert me["permissions"]["lead"]["add"] == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"email": "m1@test.local", "full_name": "Dup"}, "email"),
    ({"email": "not-an-email", "full_name": "X"}, "email"),
    ({"email": "a@test.local"}, "full_name"),
    ({"email": "a@test.local", "full_name": "X", "password": "1"}, "password"),
    ({"email": "a@test.local", "full_name": "X", "locale": "de"}, "locale"),
    ({"email": "a@test.local", "full_name": "X", "timezone": "Mars/Base"}, "timezone"),
    ({"email": "a@test.local", "full_name": "X", "department_id": "x"}, "department_id"),
    ({"email": "a@test.local", "full_name": "X", "department_id": 2**70}, "department_id"),
    ({"email": "a@test.local", "full_name": "X", "deputy_id": 2**40}, "deputy_id"),
    ({"email": "a@test.local", "full_name": "X", "password_hash": "x"}, "password_hash"),
    ({"email": "a@test.local", "full_name": "X", "actor": 1}, "actor"),
    ({"email": "a@test.local", "full_name": "X", "role_ids": [999999]}, "role_ids"),
    ({"email": "a@test.local", "full_name": "X", "role_ids": "admin"}, "role_ids"),
    ({"email": "a@test.local", "full_name": "X", "role_ids": [True]}, "role_ids"),
])
def test_bad_user_input_creates_nothing(db, org, admin, body, field):
    before = row_counts(db)
    r = admin.post("/api/v1/users", json=body)
    assert r.status_code == 422, r.get_json()
    assert field in error_of(r)["fields"]
    assert row_counts(db) == before


def test_users_change_their_own_profile_only(app, db, org, manager, admin):
    r = manager.patch(f"/api/v1/users/{org.m1.id}", json={"full_name": "Manager 1",
                                                          "locale": "en"})
    assert r.status_code == 200 and r.get_json()["full_name"] == "Manager 1"
    for body in ({"department_id": org.support_id}, {"active": False},
                 {"role_ids": [role(db, "admin").id]}):
        r = manager.patch(f"/api/v1/users/{org.m1.id}", json=body)
        assert r.status_code == 403, body
    assert manager.patch(f"/api/v1/users/{org.m2.id}", json={"full_name": "x"}).status_code == 403
    assert manager.get("/api/v1/users/me").get_json()["is_admin"] is False

    # an admin replaces roles and deactivates; the user's token stops working
    r = admin.patch(f"/api/v1/users/{org.m2.id}",
                    json={"role_ids": [role(db, "observer").id]})
    assert [x["code"] for x in r.get_json()["roles"]] == ["observer"]
    m2 = api_for(app, db, org.m2)
    assert m2.get("/api/v1/users/me").get_json()["permissions"]["deal"]["add"] == 0
    assert admin.patch(f"/api/v1/users/{org.m2.id}", json={"active": False}).status_code == 200
    assert m2.get("/api/v1/users/me").status_code == 401
    assert admin.patch("/api/v1/users/999999", json={"full_name": "x"}).status_code == 404


def test_departments(db, org, admin, manager):
    listed = manager.get("/api/v1/departments").get_json()["items"]
    assert {d["name"] for d in listed} == {"Sales", "Corporate", "Support"}
    sales = manager.get(f"/api/v1/departments/{org.sales_id}").get_json()
    assert sales["head_id"] == org.head.id and org.m1.id in sales["user_ids"]
    assert sales["child_ids"] == [org.corporate_id]

    r = admin.post("/api/v1/departments", json={"name": "Retail", "parent_id": org.sales_id,
                                                "head_id": org.m2.id})
    assert r.status_code == 201, r.get_json()
    retail = r.get_json()
    assert retail["parent_id"] == org.sales_id and retail["head_id"] == org.m2.id
    r = admin.patch(f"/api/v1/departments/{retail['id']}", json={"name": "Розница"})
    assert r.status_code == 200 and r.get_json()["name"] == "Розница"
    assert r.get_json()["parent_id"] == org.sales_id

    for body, field in (({"name": ""}, "name"), ({"name": "X", "parent_id": "abc"}, "parent_id"),
                        ({"name": "X", "parent_id": 999999}, "parent_id"),
                        ({"name": "X", "head_id": True}, "head_id"),
                        ({"name": "X", "head_id": "1"}, "head_id"),
                        ({"name": "X", "parent_id": 2**62}, "parent_id"),
                        ({"name": "X", "head_id": 2**70}, "head_id"),
                        ({"name": "X", "department_id": org.sales_id}, "department_id")):
        r = admin.post("/api/v1/departments", json=body)
        assert r.status_code == 422 and field in error_of(r)["fields"], (body, r.get_json())
    r = admin.patch(f"/api/v1/departments/{org.sales_id}", json={"parent_id": org.corporate_id})
    assert r.status_code == 422 and "parent_id" in error_of(r)["fields"]
    r = admin.delete(f"/api/v1/departments/{org.sales_id}")
    assert r.status_code == 409 and error_of(r)["code"] == "conflict"
    assert admin.delete(f"/api/v1/departments/{retail['id']}").status_code == 204
    assert manager.get(f"/api/v1/departments/{retail['id']}").status_code == 404


def test_roles_with_their_matrix(db, org, admin, manager):
    roles = {r["code"]: r for r in manager.get("/api/v1/roles").get_json()["items"]}
    assert set(roles) == {"admin", "sales_head", "manager", "observer"}
    assert roles["manager"]["permissions"]["deal"]["read"] == 1
    assert roles["sales_head"]["permissions"]["lead"]["update"] == 3
    assert roles["observer"]["permissions"]["contact"] == {
        "read": 4, "add": 0, "update": 0, "delete": 0, "export": 0, "import": 0}
    assert roles["admin"]["flags"] == {"manage_settings": True, "design_processes": True}

    r = admin.post("/api/v1/roles", json={
        "name": "Deal reader", "permissions": {"deal": {"read": 5, "update": 2}},
        "flags": {"design_processes": True}})
    assert r.status_code == 201, r.get_json()
    reader = r.get_json()
    assert reader["permissions"]["deal"]["read"] == 5 and reader["permissions"]["deal"]["update"] == 2
    assert reader["permissions"]["lead"]["read"] == 0 and reader["code"] is None
    assert reader["flags"] == {"manage_settings": False, "design_processes": True}
    r = admin.patch(f"/api/v1/roles/{reader['id']}", json={"permissions": {"deal": {"read": 1}}})
    assert r.get_json()["permissions"]["deal"] == {**reader["permissions"]["deal"], "read": 1}
    assert manager.get(f"/api/v1/roles/{reader['id']}").get_json()["name"] == "Deal reader"

    before = row_counts(db)
    for body, field in (({"name": ""}, "name"), ({"permissions": {"deal": {"read": 9}}},
                                                  "deal.read"),
                        ({"permissions": {"ship": {"read": 1}}}, "ship.read"),
                        ({"permissions": {"deal": {"read": True}}}, "deal.read"),
                        ({"permissions": {"deal": 5}}, "permissions"),
                        ({"permissions": []}, "permissions"),
                        ({"flags": {"manage_settings": "yes"}}, "flags"),
                        ({"flags": {"fly": True}}, "fly"), ({"code": "x"}, "code")):
        r = admin.patch(f"/api/v1/roles/{reader['id']}", json=body)
        assert r.status_code == 422 and field in error_of(r)["fields"], (body, r.get_json())
    assert row_counts(db) == before
    assert admin.patch("/api/v1/roles/999999", json={"name": "x"}).status_code == 404


def test_grants_change_what_a_user_may_do(app, db, org, admin):
    head_role = role(db, "sales_head").id
    outsider = api_for(app, db, org.outsider)
    assert outsider.get("/api/v1/users/me").get_json()["permissions"]["deal"]["read"] == 1
    r = admin.post(f"/api/v1/roles/{head_role}/grants", json={"user_id": org.outsider.id})
    assert r.status_code == 201
    grant = r.get_json()
    assert grant["user_id"] == org.outsider.id and grant["role_id"] == head_role
    assert outsider.get("/api/v1/users/me").get_json()["permissions"]["deal"]["read"] == 3
    grants = admin.get(f"/api/v1/roles/{head_role}/grants").get_json()["items"]
    assert grant["id"] in {g["id"] for g in grants}

    r = admin.post(f"/api/v1/roles/{head_role}/grants", json={"department_id": org.support_id})
    assert r.status_code == 201 and r.get_json()["department_id"] == org.support_id
    for body, field in (({"user_id": "x"}, "user_id"), ({"user_id": 999999}, "user_id"),
                        ({"user_id": 2**70}, "user_id"),
                        ({"department_id": [1]}, "department_id"), ({}, "user_id"),
                        ({"user_id": org.m1.id, "department_id": org.sales_id}, "user_id"),
                        ({"role_id": 1, "user_id": org.m1.id}, "role_id")):
        r = admin.post(f"/api/v1/roles/{head_role}/grants", json=body)
        assert r.status_code == 422 and field in error_of(r)["fields"], (body, r.get_json())
    assert admin.post("/api/v1/roles/999999/grants",
                      json={"user_id": org.m1.id}).status_code == 404

    manager_role = role(db, "manager").id
    assert admin.delete(f"/api/v1/roles/{manager_role}/grants/{grant['id']}").status_code == 404
    assert admin.delete(f"/api/v1/roles/{head_role}/grants/{grant['id']}").status_code == 204
    # still sales_head through the department grant; take that back too
    dep_grant = next(g for g in admin.get(f"/api/v1/roles/{head_role}/grants").get_json()["items"]
                     if g["department_id"] == org.support_id)
    assert admin.delete(f"/api/v1/roles/{head_role}/grants/{dep_grant['id']}").status_code == 204
    assert outsider.get("/api/v1/users/me").get_json()["permissions"]["deal"]["read"] == 1
