"""Administration: users, departments, roles with the editable permission matrix, grants."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_models.org import Department, PermLevel, Role, RoleGrant, User
from crm_models.permissions import actor_for
from tests.factories import make_deal, role

from .pages_support import Browser, counts, field_error, fresh, input_value, set_locale, text


@pytest.fixture()
def admin(app, org, client, auth):
    return Browser(client, auth).login(org.admin)


def matrix_form(r: Role, **changes: int) -> dict[str, str]:
    """The role page's form as a browser would post it, with some cells changed."""
    form = {"name": r.name}
    for p in r.permissions:
        form[f"level-{p.entity}-{p.action}"] = str(p.level)
    for key, level in changes.items():
        form["level-" + key.replace("__", "-")] = str(level)
    for flag in ("manage_settings", "design_processes"):
        if getattr(r, flag):
            form[flag] = "on"
    return form


def test_admin_pages_render_in_both_languages(app, db, org, admin):
    checks = {"/admin/users": ("Пользователи", "Users"),
              "/admin/departments": ("Отделы", "Departments"),
              "/admin/roles": ("Роли и права", "Roles and rights"),
              f"/admin/roles/{role(db, 'manager').id}": ("Матрица прав доступа",
                                                          "Permission matrix"),
              f"/admin/users/{org.m1.id}/edit": ("Заместитель", "Deputy"),
              f"/admin/departments/{org.sales_id}/edit": ("Руководитель", "Head")}
    for path, (ru, _en) in checks.items():
        r = admin.get(path)
        assert r.status_code == 200 and ru in text(r), path
    set_locale(db, org.admin, "en")
    for path, (_ru, en) in checks.items():
        assert en in text(admin.get(path)), path


def test_department_tree_nests_children(app, db, org, admin):
    html = text(admin.get("/admin/departments"))
    sales = html.index(">Sales<")
    corporate = html.index(">Corporate<")
    assert sales < corporate and "Head of Sales" in html
    assert html[sales:corporate].count('<ul class="tree">') == 1


def test_create_user_with_roles_then_sign_in(app, db, org, admin, client, auth):
    manager = role(db, "manager")
    r = admin.post("/admin/users/new", {
        "full_name": "New Person", "email": "New@Test.local", "password": "secret1",
        "active": "on", "locale": "en", "timezone": "Asia/Yekaterinburg",
        "department_id": str(org.support_id), "deputy_id": str(org.m1.id),
        "out_of_office_from": "2030-01-10T09:00", "out_of_office_until": "2030-01-20T18:00",
        "roles": [str(manager.id)]})
    assert r.status_code == 302, text(r)[:1500]
    user = fresh(db).scalars(select(User).where(User.email == "new@test.local")).one()
    assert user.locale == "en" and user.department_id == org.support_id
    assert user.deputy_id == org.m1.id
    # typed in the user's own zone (UTC+5)
    assert user.out_of_office_from == dt.datetime(2030, 1, 10, 4, 0, tzinfo=dt.UTC)
    assert [g.role_id for g in db.scalars(select(RoleGrant).where(
        RoleGrant.user_id == user.id))] == [manager.id]
    html = text(admin.get(f"/admin/users/{user.id}/edit"))
    assert input_value(html, "out_of_office_from") == "2030-01-10T09:00"
    auth.logout()
    assert auth.login("new@test.local", "secret1").status_code == 302
    assert "Deals" in text(client.get("/deals"))


def test_user_form_errors_keep_input_and_write_nothing(app, db, org, admin):
    before = counts(db)
    r = admin.post("/admin/users/new", {"full_name": "", "email": "m1@test.local",
                                        "password": "x", "timezone": "Mars/Olympus",
                                        "locale": "ru", "department_id": "999999",
                                        "roles": [str(role(db, "manager").id)]})
    assert r.status_code == 422
    html = text(r)
    assert field_error(html, "full_name") == "обязательное поле (не более 200 символов)"
    assert field_error(html, "email") == "уже используется другим пользователем"
    assert field_error(html, "password") == "должно быть от 4 до 200 символов"
    assert field_error(html, "timezone").startswith("должно быть часовым поясом")
    assert field_error(html, "department_id")
    assert input_value(html, "email") == "m1@test.local"
    assert counts(db) == before
    r = admin.post("/admin/users/new", {"full_name": "Y", "email": "y@test.local",
                                        "password": "secret", "locale": "ru",
                                        "timezone": "UTC", "roles": ["424242"]})
    assert r.status_code == 422 and field_error(text(r), "roles")
    assert counts(db) == before


def test_edit_user_deactivates_and_changes_roles(app, db, org, admin, client, auth):
    observer_role = role(db, "observer")
    r = admin.post(f"/admin/users/{org.m2.id}/edit", {
        "full_name": "Manager Two", "email": "m2@test.local", "locale": "ru",
        "timezone": "Europe/Moscow", "department_id": str(org.sales_id),
        "roles": [str(observer_role.id)]})  # "active" unticked, manager role dropped
    assert r.status_code == 302
    user = fresh(db).get(User, org.m2.id)
    assert user.active is False
    assert [g.role_id for g in db.scalars(select(RoleGrant).where(
        RoleGrant.user_id == user.id))] == [observer_role.id]
    auth.logout()
    assert auth.login("m2@test.local").status_code == 401


def test_departments_create_edit_with_head_parent_and_roles(app, db, org, admin):
    manager = role(db, "manager")
    r = admin.post("/admin/departments/new", {"name": "Key accounts",
                                              "parent_id": str(org.sales_id),
                                              "head_id": str(org.m2.id),
                                              "roles": [str(manager.id)]})
    assert r.status_code == 302
    dep = fresh(db).scalars(select(Department).where(Department.name == "Key accounts")).one()
    dep_id = dep.id
    assert dep.parent_id == org.sales_id and dep.head_id == org.m2.id
    assert db.scalars(select(RoleGrant.role_id).where(
        RoleGrant.department_id == dep.id)).all() == [manager.id]
    # a department cannot move inside its own child
    r = admin.post(f"/admin/departments/{org.sales_id}/edit", {
        "name": "Sales", "parent_id": str(dep.id), "head_id": str(org.head.id)})
    assert r.status_code == 422
    assert field_error(text(r), "parent_id") == "отдел не может входить сам в себя"
    r = admin.post(f"/admin/departments/{dep.id}/edit", {"name": "", "parent_id": "x"})
    assert r.status_code == 422 and field_error(text(r), "name")
    # an empty department can be deleted, one with members cannot
    assert admin.post(f"/admin/departments/{org.sales_id}/delete").status_code == 303
    assert fresh(db).get(Department, org.sales_id) is not None
    assert admin.post(f"/admin/departments/{dep_id}/delete").status_code == 302
    assert fresh(db).get(Department, dep_id) is None


def test_role_matrix_edit_changes_effective_rights(app, db, org, admin, client, auth):
    make_deal(db, org.m1, title="Visible before")
    db.commit()
    manager = role(db, "manager")
    html = text(admin.get(f"/admin/roles/{manager.id}"))
    assert 'name="level-deal-read"' in html
    assert html.count("<select name=\"level-") == 36
    r = admin.post(f"/admin/roles/{manager.id}", matrix_form(manager, deal__read=0))
    assert r.status_code == 302
    fresh(db)
    assert db.get(Role, manager.id).level("deal", "read") == PermLevel.NONE
    assert actor_for(db, db.get(User, org.m1.id)).level("deal", "read") == PermLevel.NONE
    auth.logout()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get("/deals"))
    assert "Visible before" not in html and "Найдено 0 записей" in html
    assert "/deals/kanban" not in text(b.get("/"))  # the menu hides what cannot be read


def test_role_matrix_rejects_bad_cells_without_writing(app, db, org, admin):
    manager = role(db, "manager")
    before = counts(db)
    r = admin.post(f"/admin/roles/{manager.id}", {**matrix_form(manager, lead__read=9),
                                                  "name": ""})
    assert r.status_code == 422
    html = text(r)
    assert field_error(html, "lead-read") == "должно быть одним из уровней доступа"
    assert field_error(html, "name")
    assert counts(db) == before
    assert fresh(db).get(Role, manager.id).level("lead", "read") == PermLevel.OWN


def test_new_role_with_flags_and_grants(app, db, org, admin, client, auth):
    form = {"name": "Process designers", "design_processes": "on"}
    form.update({f"level-lead-{a}": "5" for a in ("read", "add")})
    r = admin.post("/admin/roles/new", form)
    assert r.status_code == 302
    new = fresh(db).scalars(select(Role).where(Role.name == "Process designers")).one()
    assert new.design_processes and not new.manage_settings
    assert new.level("lead", "read") == PermLevel.ALL
    assert new.level("deal", "read") == PermLevel.NONE
    r = admin.post(f"/admin/roles/{new.id}/grants", {"user_id": str(org.outsider.id)})
    assert r.status_code == 302
    r = admin.post(f"/admin/roles/{new.id}/grants", {"department_id": str(org.corporate_id)})
    assert r.status_code == 302
    html = text(admin.get(f"/admin/roles/{new.id}"))
    assert "Outsider" in html and "Corporate" in html
    assert actor_for(fresh(db), db.get(User, org.corporate.id)).level(
        "lead", "read") == PermLevel.ALL
    r = admin.post(f"/admin/roles/{new.id}/grants", {})
    assert r.status_code == 422
    r = admin.post(f"/admin/roles/{new.id}/grants", {"user_id": "abc"})
    assert r.status_code == 422
    grant_id = db.scalars(select(RoleGrant.id).where(RoleGrant.role_id == new.id,
                                                     RoleGrant.user_id == org.outsider.id)).one()
    assert admin.post(f"/admin/grants/{grant_id}/revoke").status_code == 302
    assert fresh(db).get(RoleGrant, grant_id) is None
    assert admin.post("/admin/grants/999999/revoke").status_code == 404
    assert admin.get("/admin/roles/999999").status_code == 404
