"""Users, departments, roles, grants, API tokens, login throttling and out-of-office settings."""
from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_models.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_models.org import ApiToken, Department, PermLevel, Role, User
from crm_models.permissions import actor_for
from crm_models.services.org import (
    THROTTLE_MAX_FAILURES,
    authenticate,
    check_password,
    create_token,
    create_user,
    delete_department,
    grant_role,
    save_department,
    save_role,
    update_user,
    user_for_token,
)
from tests.factories import PASSWORD, SYSTEM, Org, make_user, role

# --- users -----------------------------------------------------------------------------------


def test_email_is_unique_case_insensitively_and_stored_lowercase(db: Session, org: Org) -> None:
    user = create_user(db, SYSTEM, email="  New.Person@Example.COM ", full_name="New Person")
    assert user.email == "new.person@example.com"
    for clash in ("NEW.PERSON@example.com", "m1@TEST.local"):
        with pytest.raises(ValidationFailed) as info:
            create_user(db, SYSTEM, email=clash, full_name="Clash")
        assert info.value.fields == {"email": "is already used by another user"}
    with pytest.raises(ValidationFailed) as info:
        update_user(db, SYSTEM, org.m2.id, email="M1@test.local")
    assert "email" in info.value.fields
    # Changing the case of one's own address is no clash.
    assert update_user(db, SYSTEM, org.m1.id, email="M1@Test.Local").email == "m1@test.local"


@pytest.mark.parametrize(("data", "field"), [
    ({"email": "no-at-sign", "full_name": "X"}, "email"),
    ({"email": "a@b", "full_name": "X"}, "email"),
    ({"email": "a\x00@b.ru", "full_name": "X"}, "email"),
    ({"email": None, "full_name": "X"}, "email"),
    ({"email": "a@" + "b" * 260 + ".ru", "full_name": "X"}, "email"),
    ({"email": "ok@x.ru", "full_name": ""}, "full_name"),
    ({"email": "ok@x.ru", "full_name": "x" * 201}, "full_name"),
    ({"email": "ok@x.ru", "full_name": "X", "password": "abc"}, "password"),
    ({"email": "ok@x.ru", "full_name": "X", "password": 12345}, "password"),
    ({"email": "ok@x.ru", "full_name": "X", "active": "yes"}, "active"),
    ({"email": "ok@x.ru", "full_name": "X", "locale": "de"}, "locale"),
    ({"email": "ok@x.ru", "full_name": "X", "locale": ["ru"]}, "locale"),
    ({"email": "ok@x.ru", "full_name": "X", "timezone": "Mars/Olympus"}, "timezone"),
    ({"email": "ok@x.ru", "full_name": "X", "timezone": "a" * 5000}, "timezone"),
    ({"email": "ok@x.ru", "full_name": "X", "timezone": "../../etc/passwd"}, "timezone"),
    ({"email": "ok@x.ru", "full_name": "X", "timezone": ""}, "timezone"),
    ({"email": "ok@x.ru", "full_name": "X", "department_id": 999999}, "department_id"),
    ({"email": "ok@x.ru", "full_name": "X", "department_id": "1"}, "department_id"),
    ({"email": "ok@x.ru", "full_name": "X", "department_id": 10**30}, "department_id"),
    ({"email": "ok@x.ru", "full_name": "X", "deputy_id": 2**31}, "deputy_id"),
    ({"email": "ok@x.ru", "full_name": "X", "deputy_id": True}, "deputy_id"),
    ({"email": "ok@x.ru", "full_name": "X", "is_admin": True}, "is_admin"),
])
def test_user_validation(db: Session, org: Org, data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        create_user(db, SYSTEM, **data)
    assert field in info.value.fields


def test_password_is_hashed_with_argon2(db: Session, org: Org) -> None:
    user = create_user(db, SYSTEM, email="hash@x.ru", full_name="Hash", password="s3cret-pw")
    assert user.password_hash.startswith("$argon2id$")
    assert "s3cret-pw" not in user.password_hash
    assert check_password(user, "s3cret-pw")
    assert not check_password(user, "s3cret-PW")
    assert not check_password(user, "")
    # Each hash has its own salt.
    other = create_user(db, SYSTEM, email="hash2@x.ru", full_name="Hash", password="s3cret-pw")
    assert other.password_hash != user.password_hash
    # No password: no login at all, not a login with an empty one.
    nopw = create_user(db, SYSTEM, email="nopw@x.ru", full_name="No password")
    assert not check_password(nopw, "")
    user.password_hash = "not a hash"
    assert not check_password(user, "s3cret-pw")


def test_production_hasher_is_not_weakened() -> None:
    # The test suite swaps in a cheap hasher; a fresh interpreter shows the application's own.
    code = ("import crm_models.services.org as o; h = o._hasher; "
            "print(h.time_cost, h.memory_cost, o.hash_password('x')[:10])")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    assert int(out[0]) >= 2 and int(out[1]) >= 19 * 1024
    assert out[2] == "$argon2id$"


def test_only_admins_create_users(db: Session, org: Org) -> None:
    with pytest.raises(PermissionDenied):
        create_user(db, actor_for(db, org.head), email="x@x.ru", full_name="X")


def test_user_may_change_only_own_profile_fields(db: Session, org: Org) -> None:
    m1 = actor_for(db, org.m1)
    changed = update_user(db, m1, org.m1.id, full_name="Иван Менеджеров", locale="en",
                          timezone="Asia/Yekaterinburg", password="new-password",
                          current_password=PASSWORD, deputy_id=org.m2.id, out_of_office_from="2030-01-01T00:00:00+03:00",
                          out_of_office_until="2030-01-10T00:00:00+03:00")
    assert (changed.full_name, changed.locale, changed.timezone, changed.deputy_id) == (
        "Иван Менеджеров", "en", "Asia/Yekaterinburg", org.m2.id)
    assert check_password(changed, "new-password")
    for forbidden in ({"active": False}, {"department_id": org.support_id},
                      {"email": "other@x.ru"}, {"full_name": "x", "active": True}):
        with pytest.raises(PermissionDenied):
            update_user(db, m1, org.m1.id, **forbidden)
    with pytest.raises(PermissionDenied):
        update_user(db, m1, org.m2.id, full_name="Not yours")
    # An admin changes anyone, anything.
    admin = actor_for(db, org.admin)
    assert update_user(db, admin, org.m2.id, department_id=org.support_id,
                       active=False).active is False


def test_user_update_audits_without_the_password(db: Session, org: Org) -> None:
    from crm_models.activity import AuditEvent

    update_user(db, SYSTEM, org.m1.id, password="another-one", locale="en")
    event = db.scalars(select(AuditEvent).where(AuditEvent.entity_type == "user")
                       .order_by(AuditEvent.id.desc())).first()
    # A reset by someone else revokes the user's credentials, and says so.
    assert event.changes == {"locale": ["ru", "en"], "password": ["***", "***"],
                             "credentials": ["active", "revoked (0 API tokens, webhooks)"]}


@pytest.mark.parametrize("bad_id", ["abc", None, True, 2**31, 10**30, 0, 999999])
def test_update_unknown_user_is_not_found(db: Session, org: Org, bad_id: Any) -> None:
    with pytest.raises(NotFound):
        update_user(db, SYSTEM, bad_id, full_name="x")


# --- out of office and deputies --------------------------------------------------------------

def test_out_of_office_period(db: Session, org: Org) -> None:
    user = update_user(db, SYSTEM, org.m1.id, out_of_office_from="2030-05-01T09:00:00",
                       out_of_office_until="2030-05-03T18:00:00+00:00", deputy_id=org.m2.id)
    # A time without offset is the user's local time (Europe/Moscow, UTC+3).
    assert user.out_of_office_from == dt.datetime(2030, 5, 1, 6, 0, tzinfo=dt.UTC)
    assert user.is_out_of_office(dt.datetime(2030, 5, 2, tzinfo=dt.UTC))
    assert not user.is_out_of_office(dt.datetime(2030, 5, 3, 18, 0, tzinfo=dt.UTC))
    assert not user.is_out_of_office(dt.datetime(2030, 4, 30, tzinfo=dt.UTC))
    db.commit()
    db.expire_all()
    again = db.get(User, org.m1.id)
    assert again.out_of_office_until == dt.datetime(2030, 5, 3, 18, 0, tzinfo=dt.UTC)
    assert again.deputy.id == org.m2.id
    cleared = update_user(db, SYSTEM, org.m1.id, out_of_office_from=None,
                          out_of_office_until="", deputy_id=None)
    assert (cleared.out_of_office_from, cleared.out_of_office_until, cleared.deputy_id) == (
        None, None, None)


@pytest.mark.parametrize(("data", "field"), [
    ({"out_of_office_from": "next week"}, "out_of_office_from"),
    ({"out_of_office_from": 5}, "out_of_office_from"),
    ({"out_of_office_from": "0001-01-01T00:00:00+01:00"}, "out_of_office_from"),
    ({"out_of_office_until": "9999-12-31T23:59:59-05:00"}, "out_of_office_until"),
    ({"out_of_office_from": "2030-01-10T00:00:00+00:00",
      "out_of_office_until": "2030-01-01T00:00:00+00:00"}, "out_of_office_until"),
    ({"out_of_office_from": "2030-01-01T00:00:00+00:00",
      "out_of_office_until": "2030-01-01T00:00:00+00:00"}, "out_of_office_until"),
    ({"deputy_id": "self"}, "deputy_id"),
    ({"deputy_id": 999999}, "deputy_id"),
])
def test_out_of_office_validation(db: Session, org: Org, data: dict[str, Any],
                                  field: str) -> None:
    if data.get("deputy_id") == "self":
        data = {"deputy_id": org.m1.id}
    with pytest.raises(ValidationFailed) as info:
        update_user(db, actor_for(db, org.m1), org.m1.id, **data)
    assert field in info.value.fields


def test_until_before_an_existing_start_is_refused(db: Session, org: Org) -> None:
    update_user(db, SYSTEM, org.m1.id, out_of_office_from="2030-01-10T00:00:00+00:00")
    with pytest.raises(ValidationFailed) as info:
        update_user(db, SYSTEM, org.m1.id, out_of_office_until="2030-01-05T00:00:00+00:00")
    assert "out_of_office_until" in info.value.fields


def test_deactivated_user_cannot_be_a_deputy(db: Session, org: Org) -> None:
    update_user(db, SYSTEM, org.m2.id, active=False)
    with pytest.raises(ValidationFailed) as info:
        update_user(db, SYSTEM, org.m1.id, deputy_id=org.m2.id)
    assert "deputy_id" in info.value.fields


# --- login throttling ------------------------------------------------------------------------

def test_login_is_case_insensitive_and_refuses_wrong_or_inactive(db: Session, org: Org) -> None:
    assert authenticate(db, " M1@Test.Local ", PASSWORD, key="k1").id == org.m1.id
    assert authenticate(db, "m1@test.local", "wrong", key="k2") is None
    assert authenticate(db, "nobody@test.local", PASSWORD, key="k3") is None
    assert authenticate(db, None, None, key="k4") is None  # type: ignore[arg-type]
    assert authenticate(db, ["m1@test.local"], PASSWORD, key="k4") is None  # type: ignore
    update_user(db, SYSTEM, org.m2.id, active=False)
    assert authenticate(db, "m2@test.local", PASSWORD, key="k5") is None


def test_throttling_after_five_failures_per_key(db: Session, org: Org) -> None:
    assert THROTTLE_MAX_FAILURES == 5
    for _ in range(5):
        assert authenticate(db, "m1@test.local", "wrong", key="1.2.3.4|m1") is None
    db.commit()
    with pytest.raises(PermissionDenied):
        authenticate(db, "m1@test.local", PASSWORD, key="1.2.3.4|m1")
    # Another key (another address or e-mail) is not affected.
    assert authenticate(db, "m1@test.local", PASSWORD, key="5.6.7.8|m1").id == org.m1.id


def test_successful_login_resets_the_failure_count(db: Session, org: Org) -> None:
    for _ in range(4):
        assert authenticate(db, "m1@test.local", "wrong", key="k") is None
    assert authenticate(db, "m1@test.local", PASSWORD, key="k") is not None
    for _ in range(4):
        assert authenticate(db, "m1@test.local", "wrong", key="k") is None
    assert authenticate(db, "m1@test.local", PASSWORD, key="k") is not None
    db.commit()


def test_long_throttle_keys_work(db: Session, org: Org) -> None:
    key = "10.0.0.1|" + "x" * 2000 + "@example.com"
    for _ in range(5):
        assert authenticate(db, "x" * 2000 + "@example.com", "pw", key=key) is None
    db.commit()  # the attempts are stored (a key wider than the column must not fail here)
    with pytest.raises(PermissionDenied):
        authenticate(db, "m1@test.local", PASSWORD, key=key)


# --- API tokens ------------------------------------------------------------------------------

def test_token_is_stored_only_as_its_hash(db: Session, org: Org) -> None:
    token = create_token(db, org.m1, name="Integration")
    db.commit()
    row = db.scalars(select(ApiToken)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_hash, row.name)
    assert user_for_token(db, token).id == org.m1.id
    assert row.last_used_at is not None


def test_revoked_or_deactivated_tokens_are_refused(db: Session, org: Org) -> None:
    token = create_token(db, org.m1)
    other = create_token(db, org.m2)
    db.scalars(select(ApiToken).where(ApiToken.user_id == org.m1.id)).one().revoked = True
    update_user(db, SYSTEM, org.m2.id, active=False)
    assert user_for_token(db, token) is None
    assert user_for_token(db, other) is None
    for garbage in ("", "mr_nope", "x" * 1000, token[:-1]):
        assert user_for_token(db, garbage) is None


# --- departments -----------------------------------------------------------------------------

def test_department_cycles_are_refused(db: Session, org: Org) -> None:
    with pytest.raises(ValidationFailed) as info:
        save_department(db, SYSTEM, org.sales_id, parent_id=org.corporate_id)
    assert "parent_id" in info.value.fields
    with pytest.raises(ValidationFailed) as info:
        save_department(db, SYSTEM, org.sales_id, parent_id=org.sales_id)
    assert "parent_id" in info.value.fields
    deeper = save_department(db, SYSTEM, name="Key accounts", parent_id=org.corporate_id)
    with pytest.raises(ValidationFailed):
        save_department(db, SYSTEM, org.sales_id, parent_id=deeper.id)
    # Moving a branch elsewhere is fine.
    moved = save_department(db, SYSTEM, org.corporate_id, parent_id=org.support_id)
    assert moved.parent_id == org.support_id


@pytest.mark.parametrize(("data", "field"), [
    ({"name": ""}, "name"), ({"name": None}, "name"), ({"name": "x" * 201}, "name"),
    ({"name": "X", "parent_id": 999999}, "parent_id"),
    ({"name": "X", "parent_id": "abc"}, "parent_id"),
    ({"name": "X", "parent_id": 10**30}, "parent_id"),
    ({"name": "X", "head_id": 999999}, "head_id"), ({"name": "X", "head_id": [1]}, "head_id"),
])
def test_department_validation(db: Session, org: Org, data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        save_department(db, SYSTEM, **data)
    assert field in info.value.fields


def test_department_delete_refused_while_it_has_members_or_children(db: Session,
                                                                     org: Org) -> None:
    with pytest.raises(Conflict):
        delete_department(db, SYSTEM, org.support_id)  # the outsider works there
    with pytest.raises(Conflict):
        delete_department(db, SYSTEM, org.sales_id)  # members and Corporate inside
    update_user(db, SYSTEM, org.outsider.id, department_id=None)
    delete_department(db, SYSTEM, org.support_id)
    assert db.get(Department, org.support_id) is None
    with pytest.raises(NotFound):
        delete_department(db, SYSTEM, org.support_id)
    with pytest.raises(PermissionDenied):
        delete_department(db, actor_for(db, org.head), org.corporate_id)


def test_only_admins_change_the_org(db: Session, org: Org) -> None:
    head = actor_for(db, org.head)
    with pytest.raises(PermissionDenied):
        save_department(db, head, name="Shadow IT")
    with pytest.raises(PermissionDenied):
        save_role(db, head, name="Everything", levels={("deal", "read"): 5})
    with pytest.raises(PermissionDenied):
        grant_role(db, head, role(db, "admin").id, user_id=org.head.id)


# --- roles and grants ------------------------------------------------------------------------

@pytest.mark.parametrize(("levels", "flags", "field"), [
    ({("ticket", "read"): 1}, None, "ticket.read"),
    ({("deal", "approve"): 1}, None, "deal.approve"),
    ({("deal", "read"): 6}, None, "deal.read"),
    ({("deal", "read"): -1}, None, "deal.read"),
    ({("deal", "read"): "3"}, None, "deal.read"),
    ({("deal", "read"): True}, None, "deal.read"),
    ({("deal", "read"): 2.5}, None, "deal.read"),
    ({("deal", "read"): None}, None, "deal.read"),
    ({"deal.read": 3}, None, "deal.read"),
    ({("deal",): 3}, None, "deal"),
    (None, {"launch_rockets": True}, "launch_rockets"),
    (None, {"manage_settings": "false"}, "manage_settings"),
    (None, {"design_processes": 1}, "design_processes"),
])
def test_role_matrix_cells_are_validated(db: Session, org: Org, levels: Any, flags: Any,
                                         field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        save_role(db, SYSTEM, name="Custom", levels=levels, flags=flags)
    assert field in info.value.fields
    assert db.scalars(select(Role).where(Role.name == "Custom")).first() is None


def test_role_name_is_required(db: Session, org: Org) -> None:
    for name in (None, "", "x" * 201, 5):
        with pytest.raises(ValidationFailed) as info:
            save_role(db, SYSTEM, name=name)  # type: ignore[arg-type]
        assert "name" in info.value.fields


def test_custom_role_is_saved_and_changed(db: Session, org: Org) -> None:
    custom = save_role(db, SYSTEM, name="  Designer ",
                       levels={("deal", "read"): PermLevel.OPEN, ("lead", "add"): 1},
                       flags={"design_processes": True})
    assert custom.name == "Designer"
    assert custom.level("deal", "read") == PermLevel.OPEN
    assert custom.level("deal", "update") == PermLevel.NONE
    assert custom.design_processes and not custom.manage_settings
    save_role(db, SYSTEM, custom.id, levels={("deal", "read"): PermLevel.ALL},
              flags={"design_processes": False})
    db.commit()
    db.expire_all()
    again = db.get(Role, custom.id)
    assert again.name == "Designer"
    assert again.level("deal", "read") == PermLevel.ALL
    assert again.level("lead", "add") == PermLevel.OWN
    assert not again.design_processes
    with pytest.raises(NotFound):
        save_role(db, SYSTEM, 999999, name="Ghost")


def test_grant_role_validation(db: Session, org: Org) -> None:
    manager = role(db, "manager").id
    with pytest.raises(ValidationFailed):
        grant_role(db, SYSTEM, manager)
    with pytest.raises(ValidationFailed):
        grant_role(db, SYSTEM, manager, user_id=org.m1.id, department_id=org.sales_id)
    for kw, field in (({"user_id": 999999}, "user_id"), ({"user_id": "1"}, "user_id"),
                      ({"department_id": 10**30}, "department_id")):
        with pytest.raises(ValidationFailed) as info:
            grant_role(db, SYSTEM, manager, **kw)
        assert field in info.value.fields
    with pytest.raises(ValidationFailed) as info:
        grant_role(db, SYSTEM, 999999, user_id=org.m1.id)
    assert "role_id" in info.value.fields
    # Granting twice gives the same grant.
    first = grant_role(db, SYSTEM, manager, department_id=org.sales_id)
    assert grant_role(db, SYSTEM, manager, department_id=org.sales_id).id == first.id


def test_new_user_without_roles_has_no_rights(db: Session, org: Org) -> None:
    user = make_user(db, role_code=None, department_id=org.sales_id)
    actor = actor_for(db, user)
    assert actor.levels == {} or all(v == PermLevel.NONE for v in actor.levels.values())
    assert not actor.is_admin
